"""Installing plugin handler packages the server sends (live sync). bpy-free.

A package is accepted only if the peer's `accept_plugin_handlers_from_server` preference is on and
the sha256 of the received files equals the one in the server's manifest. It is written under the
peer's own directory and bound in sys.modules under its real name, replacing any older copy.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

from blendbus.sync import digest, read_package

ACCEPT_GATE = "accept_plugin_handlers_from_server"


def local_sha(package: str) -> str | None:
    files = read_package(package)
    return digest(files) if files is not None else None


def decode(source: dict[str, Any]) -> dict[str, bytes]:
    files = source["files"]
    if source.get("encoding") == "base64":
        return {rel: base64.b64decode(text) for rel, text in files.items()}
    return {rel: text.encode("utf-8") for rel, text in files.items()}


def install(source: dict[str, Any], root: Path) -> Path:
    """Verify and write a package, then import it in place of whatever was loaded before."""
    package, expected = source["package"], source["sha256"]
    files = decode(source)
    actual = digest(files)
    if actual != expected:
        raise ValueError(f"handler package {package}: sha256 {actual} does not match the manifest's {expected}")
    target = root / expected / package.replace(".", "/")
    for rel, data in files.items():
        path = (target / rel).resolve()
        if not path.is_relative_to(target.resolve()):
            raise ValueError(f"handler package {package}: file {rel!r} escapes the package folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    bind(package, target)
    return target


def bind(package: str, directory: Path) -> None:
    """Import the package in `directory` under the name `package`, replacing any loaded copy."""
    parts = package.split(".")
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if parent in sys.modules:
            continue
        try:
            importlib.import_module(parent)
        except ImportError:
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
