"""Test kit for blendbus and its plugin authors: an in-process server, the Python test peer, and
helpers to call tools. The pytest fixtures built on it live in `blendbus.testing.pytest_plugin`."""

from .kit import call_envelope, call_whole, eventually, in_memory, make_server, peer_uuids, run_code, serve_http
from .peer import PythonPeer

__all__ = ["PythonPeer", "call_envelope", "call_whole", "eventually", "in_memory", "make_server", "peer_uuids",
           "run_code", "serve_http"]
