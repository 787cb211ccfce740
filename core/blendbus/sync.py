"""Addon-side handler packages: what the server can ship to a peer, identified by sha256.

The addon-side package of a plugin is the package holding its handler modules. A peer compares
this manifest with what it can import and fetches what it lacks, so a plugin pip-installed next to
the server runs in Blender without reinstalling the addon (docs/peer-protocol.md, "Handler sync").
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .plugins import PluginSet

ADDON_PACKAGE = "blendbus_addon"
"""Handlers inside the addon itself ship with the addon, never through sync."""
MAX_PACKAGE_BYTES = 8 * 1024 * 1024


def handler_package(handler: str) -> str:
    """'pkg.addon.handlers:fn' -> 'pkg.addon' (the package that ships to Blender)."""
    module = handler.partition(":")[0]
    return module.rpartition(".")[0] or module


def package_files(root: Path) -> dict[str, bytes]:
    """Every file of a package directory that Blender needs: sources and data, no bytecode."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def digest(files: dict[str, bytes]) -> str:
    """A content hash independent of file order, mtimes and location."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()


def locate(package: str) -> Path | None:
    """The directory (or single .py file) an importable package lives in, without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin) if spec.origin else None


def read_package(package: str) -> dict[str, bytes] | None:
    where = locate(package)
    if where is None:
        return None
    if where.is_file():
        return {where.name: where.read_bytes()}
    return package_files(where)


@dataclass(frozen=True)
class HandlerPackage:
    package: str
    plugin: str
    version: str | None
    sha256: str
    files: dict[str, bytes]

    def describe(self) -> dict[str, Any]:
        return {"package": self.package, "plugin": self.plugin, "version": self.version, "sha256": self.sha256}


class HandlerPackages:
    """The addon-side packages of every loaded plugin, read once at start-up."""

    def __init__(self, packages: list[HandlerPackage]) -> None:
        self._by_name = {pkg.package: pkg for pkg in packages}

    @classmethod
    def from_plugins(cls, plugins: PluginSet) -> HandlerPackages:
        found: list[HandlerPackage] = []
        seen: set[str] = set()
        for name, cmd in plugins.commands.items():
            package = handler_package(cmd.handler)
            if package in seen or package.split(".")[0] == ADDON_PACKAGE:
                continue
            seen.add(package)
            files = read_package(package)
            if files is None or sum(len(b) for b in files.values()) > MAX_PACKAGE_BYTES:
                continue
            info = plugins.owner[name]
            found.append(HandlerPackage(package, info.name, info.version, digest(files), files))
        return cls(found)

    def manifest(self) -> list[dict[str, Any]]:
        return [pkg.describe() for pkg in self._by_name.values()]

    def source(self, package: str) -> dict[str, Any]:
        pkg = self._by_name.get(package)
        if pkg is None:
            raise LookupError(f"no handler package {package!r} on this server")
        try:
            files = {rel: data.decode("utf-8") for rel, data in pkg.files.items()}
            encoding = "utf-8"
        except UnicodeDecodeError:
            import base64

            files = {rel: base64.b64encode(data).decode() for rel, data in pkg.files.items()}
            encoding = "base64"
        return {**pkg.describe(), "encoding": encoding, "files": files}
