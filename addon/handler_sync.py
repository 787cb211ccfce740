"""Installing plugin handler packages the server sends (live sync). bpy-free.

A package is accepted only if the peer's `accept_plugin_handlers_from_server` preference is on, its
name is a dotted identifier, and the sha256 of the received files equals the one in the server's
manifest. It is written under the peer's own handler folder (nothing outside it) and bound in
sys.modules under its real name, replacing any older copy. Nothing the server names is imported
from this Python's installed packages: missing parent packages become empty namespaces.
"""

from __future__ import annotations

import base64
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

from blendbus.sync import digest, read_package

from .declarations import PACKAGE_RE

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def check_entry(package: Any, sha256: Any) -> str | None:
    """Why a manifest entry cannot be a handler package (None if it can)."""
    if not isinstance(package, str) or not PACKAGE_RE.match(package) or len(package) > 200:
        return f"handler package name {str(package)[:80]!r} is not a dotted Python identifier"
    if not isinstance(sha256, str) or not SHA256_RE.match(sha256):
        return f"handler package {package}: sha256 {str(sha256)[:80]!r} is not 64 hex digits"
    return None


def local_sha(package: str) -> str | None:
    """The sha256 of a package this peer declares itself (never call it with a name the server chose)."""
    files = read_package(package)
    return digest(files) if files is not None else None


def decode(source: dict[str, Any]) -> dict[str, bytes]:
    files = source["files"]
    if source.get("encoding") == "base64":
        return {rel: base64.b64decode(text) for rel, text in files.items()}
    return {rel: text.encode("utf-8") for rel, text in files.items()}


def install(source: dict[str, Any], root: Path) -> Path:
    """Verify and write a package, then import it in place of whatever was loaded before."""
    package, expected = source.get("package"), source.get("sha256")
    problem = check_entry(package, expected)
    if problem:
        raise ValueError(problem)
    files = decode(source)
    actual = digest(files)
    if actual != expected:
        raise ValueError(f"handler package {package}: sha256 {actual} does not match the manifest's {expected}")
    base = root.resolve()
    target = (base / expected / package.replace(".", "/")).resolve()
    for rel, data in files.items():
        path = (target / rel).resolve()
        if not path.is_relative_to(target) or not path.is_relative_to(base):
            raise ValueError(f"handler package {package}: file {rel!r} escapes the package folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    bind(package, target)
    return target


def bind(package: str, directory: Path) -> None:
    """Import the package in `directory` under the name `package`, replacing any loaded copy.

    Parent packages already imported are kept; missing ones become empty namespaces rather than
    being imported from this Python's installation."""
    parts = package.split(".")
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if parent not in sys.modules:
            stub = types.ModuleType(parent)
            stub.__path__ = []
            sys.modules[parent] = stub
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]
    init = directory / "__init__.py"
    if not init.exists():
        init.write_text("")
    spec = importlib.util.spec_from_file_location(package, init, submodule_search_locations=[str(directory)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    spec.loader.exec_module(module)
    if len(parts) > 1:
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], module)
