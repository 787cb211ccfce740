"""`blendbus addon build`: the installable Blender extension zip.

The zip holds the addon, `declarations.json` (every bundled plugin's commands and preferences: the
peer runs only what it declares itself, and the GUI shows the preferences before the first connection), each loaded plugin's addon-side package under `plugin_handlers/`, and the
wheels the addon imports (blendbus's own modules, mcp and its dependencies) listed in the
manifest's `wheels`. Wheels are rebuilt from what is installed here — nothing is downloaded — so a
zip targets this machine's platform; build on each platform you ship to.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import platform
import re
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from blendbus_addon.declarations import Declarations

from . import __version__
from .plugins import PluginSet, load_plugins
from .sync import ADDON_PACKAGE, handler_package, locate, package_files

ROOT_DISTRIBUTION = "blendbus"
SKIP_DISTRIBUTIONS = {"bpy", "numpy", "pip", "setuptools", "wheel", "uvloop", "httptools"}
"""Never bundled: Blender itself, what Blender ships, installers, and what only makes the server
faster (the addon runs on asyncio's own loop without them)."""


def blender_platform() -> str:
    """This machine in Blender's platform vocabulary (linux-x64, macos-arm64, windows-x64, ...)."""
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "arm64": "arm64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{arch}"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(root: str = ROOT_DISTRIBUTION) -> list[metadata.Distribution]:
    """`root` and everything it requires at run time, following requested extras (`pyjwt[crypto]`)."""
    seen: dict[str, metadata.Distribution] = {}
    expanded: set[tuple[str, str]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while todo:
        raw, extras = todo.pop()
        name = _normalize(raw)
        if name in SKIP_DISTRIBUTIONS:
            continue
        wanted = {(name, e) for e in ("", *extras)} - expanded
        if not wanted:
            continue
        try:
            dist = seen.get(name) or metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        expanded |= wanted
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for _, e in wanted):
                todo.append((req.name, frozenset(req.extras)))
    return sorted(seen.values(), key=lambda d: _normalize(d.metadata["Name"]))


def _is_editable(dist: metadata.Distribution) -> bool:
    direct = dist.read_text("direct_url.json")
    return bool(direct and json.loads(direct).get("dir_info", {}).get("editable"))


def _record_line(path: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [path, f"sha256={digest}", str(len(data))]


def _write_wheel(out_dir: Path, name: str, version: str, tag: str, files: dict[str, bytes]) -> Path:
    stem = re.sub(r"[-_.]+", "_", name)
    info = f"{stem}-{version}.dist-info"
    wheel = out_dir / f"{stem}-{version}-{tag}.whl"
    rows = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in sorted(files.items()):
            zf.writestr(path, data)
            rows.append(_record_line(path, data))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([*rows, [f"{info}/RECORD", "", ""]])
        zf.writestr(f"{info}/RECORD", buf.getvalue())
    return wheel


def _wheel_tag(dist: metadata.Distribution) -> str:
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    if not tags:
        return "py3-none-any"
    parts = [list(dict.fromkeys(t.split("-")[i] for t in tags)) for i in range(3)]
    return "-".join(".".join(p) for p in parts)


def wheel_from_installed(dist: metadata.Distribution, out_dir: Path) -> Path:
    """Repack an installed (non-editable) distribution into a wheel, from its RECORD."""
    name, version = dist.metadata["Name"], dist.version
    stem = re.sub(r"[-_.]+", "_", name)
    files: dict[str, bytes] = {}
    for entry in dist.files or []:
        rel = entry.as_posix()
        if rel.startswith("..") or "__pycache__" in rel or rel.endswith((".pyc", "/RECORD", "/INSTALLER",
                                                                         "/REQUESTED", "/direct_url.json")):
            continue
        path = Path(dist.locate_file(entry))
        if path.is_file():
            files[rel] = path.read_bytes()
    if not any(rel.endswith(".dist-info/METADATA") for rel in files):
        files[f"{stem}-{version}.dist-info/METADATA"] = (dist.read_text("METADATA") or "").encode()
    return _write_wheel(out_dir, name, version, _wheel_tag(dist), files)


def wheel_from_source(dist: metadata.Distribution, packages: list[str], out_dir: Path) -> Path:
    """A pure-Python wheel of `packages` (for editable installs, whose RECORD has no sources)."""
    name, version = dist.metadata["Name"], dist.version
    info = f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for package in packages:
        where = locate(package)
        if where is None:
            raise RuntimeError(f"cannot find package {package!r} of {name}")
        for rel, data in package_files(where).items():
            files[f"{package.replace('.', '/')}/{rel}"] = data
    files[f"{info}/METADATA"] = (dist.read_text("METADATA") or f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: blendbus\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    return _write_wheel(out_dir, name, version, "py3-none-any", files)


def build(out: Path, *, target_platform: str | None = None, plugins: PluginSet | None = None) -> Path:
    """Write the extension zip to `out`; returns its path."""
    here = blender_platform()
    if target_platform not in (None, here):
        raise ValueError(f"wheels for {target_platform} are not installed on this {here} machine;"
                         " run `blendbus addon build` on that platform")
    plugins = plugins or load_plugins()
    addon_dir = locate(ADDON_PACKAGE)
    if addon_dir is None:
        raise RuntimeError("the blendbus_addon package is not installed")
    staging = out.parent / (out.name + ".wheels")
    staging.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    for dist in dependency_closure():
        if _normalize(dist.metadata["Name"]) == ROOT_DISTRIBUTION:
            wheels.append(wheel_from_source(dist, ["blendbus"], staging))  # the addon itself is the zip root
        elif _is_editable(dist):
            raise RuntimeError(f"{dist.metadata['Name']} is installed in editable mode; install it normally")
        else:
            wheels.append(wheel_from_installed(dist, staging))
    binary = any(not w.name.endswith("-none-any.whl") for w in wheels)

    manifest = (addon_dir / "blender_manifest.toml").read_text().replace('version = "0.1.0"', f'version = "{__version__}"')
    extra = "wheels = [\n" + "".join(f'  "./wheels/{w.name}",\n' for w in wheels) + "]\n"
    if binary:
        extra += f'platforms = ["{here}"]\n'
    head, table, tail = manifest.partition("\n[")  # top-level keys must precede the first table
    manifest = f"{head}\n{extra}\n[{tail}" if table else f"{manifest}\n{extra}"

    vendored = {}
    for cmd in plugins.commands.values():
        package = handler_package(cmd.handler)
        if package.split(".")[0] == ADDON_PACKAGE or package in vendored:
            continue
        where = locate(package)
        if where is not None and where.is_dir():
            vendored[package] = package_files(where)

    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in package_files(addon_dir).items():
            if rel != "blender_manifest.toml":
                zf.writestr(rel, data)
        zf.writestr("blender_manifest.toml", manifest)
        zf.writestr("declarations.json", Declarations.of(plugins).to_json())
        zf.writestr("plugin_handlers/manifest.json", json.dumps(sorted(vendored), indent=1))
        for package, files in vendored.items():
            for rel, data in files.items():
                zf.writestr(f"plugin_handlers/{package.replace('.', '/')}/{rel}", data)
        for wheel in wheels:
            zf.write(wheel, f"wheels/{wheel.name}")
    for wheel in wheels:
        wheel.unlink()
    staging.rmdir()
    return out
