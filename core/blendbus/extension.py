"""`blendbus addon build`: the installable Blender extension zip, one per platform Blender runs on.

A zip holds the addon, `declarations.json` (every bundled plugin's commands and preferences: the
peer runs only what it declares itself, and the GUI shows the preferences before the first
connection), each loaded plugin's addon-side package under `plugin_handlers/`, and the wheels of
the distributions the addon imports, listed in the manifest's `wheels`, with `platforms` naming
the one platform the zip is for. Which distributions: exactly those whose modules the addon's own
modules import (measured by importing them, in a child Python), plus their dependencies that only
that platform needs (pywin32 on Windows): nothing of the server's (Redis, uvicorn's speedups).

The wheels for this machine's platform are repacked from what is installed here (nothing is
downloaded); for another platform each is fetched with `pip download --only-binary=:all:` for that
platform and CPython 3.11 (Blender's Python), the installed version where that platform has it, and
cached (`~/.cache/blendbus/addon-wheels`). Files are named as Blender's own
`blender --command extension build --split-platforms` names them: `blendbus-0.4.3-windows_x64.zip`.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import platform
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import platformdirs
from packaging.requirements import Requirement

from blendbus_addon.declarations import Declarations

from . import __version__
from .plugins import PluginSet, load_plugins
from .sync import ADDON_PACKAGE, handler_package, locate, package_files

ROOT_DISTRIBUTION = "blendbus"
EXTENSION_ID = "blendbus"
BLENDER_PYTHON = "3.11"
"""The Python every supported Blender (4.2 to 5.0) embeds: wheels are for CPython 3.11."""
NOT_BUNDLED = {"bpy", "numpy", "pip", "setuptools", "wheel", "uvloop", "httptools"}
"""Never bundled: Blender itself, what Blender ships, installers, and what only makes the server faster
(blendbus.eventloop uses uvloop where it is installed; the addon runs on asyncio's own loop without it)."""


@dataclass(frozen=True)
class Platform:
    """A platform Blender runs on, in pip's and in Python's marker vocabulary."""

    name: str
    """Blender's name: linux-x64, macos-arm64, macos-x64, windows-x64."""
    wheel_tags: tuple[str, ...]
    """`pip download --platform` values; pip takes older macOS versions by itself, not older glibcs."""
    markers: dict[str, str]
    """PEP 508 environment markers of that platform (what `sys_platform == 'win32'` means there)."""

    @property
    def file_suffix(self) -> str:
        return self.name.replace("-", "_")


_LINUX_TAGS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)), "manylinux2014_x86_64",
               "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64")
PLATFORMS: dict[str, Platform] = {p.name: p for p in (
    Platform("linux-x64", _LINUX_TAGS, {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                                        "platform_machine": "x86_64"}),
    Platform("macos-arm64", ("macosx_11_0_arm64", "macosx_11_0_universal2"),
             {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix", "platform_machine": "arm64"}),
    Platform("macos-x64", ("macosx_11_0_x86_64", "macosx_11_0_universal2"),
             {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix", "platform_machine": "x86_64"}),
    Platform("windows-x64", ("win_amd64",), {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt",
                                             "platform_machine": "AMD64"}),
)}
ALL = "all"


def blender_platform() -> str:
    """This machine in Blender's platform vocabulary (linux-x64, macos-arm64, windows-x64, ...)."""
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "arm64": "arm64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{arch}"


def file_name(target: Platform) -> str:
    """The zip's name, as Blender's `extension build --split-platforms` would give it."""
    return f"{EXTENSION_ID}-{__version__}-{target.file_suffix}.zip"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


MEASURE_IMPORTS = r"""
import importlib, json, pkgutil, sys
from importlib.metadata import packages_distributions
import blendbus_addon
for info in pkgutil.iter_modules(blendbus_addon.__path__):
    try:
        importlib.import_module("blendbus_addon." + info.name)
    except ImportError as exc:
        if exc.name != "bpy":  # what needs Blender is measured when bpy is here; Blender provides bpy
            raise
owners = packages_distributions()
print(json.dumps(sorted({d for m in list(sys.modules) for d in owners.get(m.split(".")[0], ())})))
"""


def imported_distributions() -> list[metadata.Distribution]:
    """The distributions whose modules the addon's modules import, measured in a child Python (this
    process has the server's modules loaded too), less what Blender ships."""
    done = subprocess.run([sys.executable, "-c", MEASURE_IMPORTS], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"could not import the addon's modules to see what they need:\n{done.stderr[-2000:]}")
    names = {_normalize(n) for n in json.loads(done.stdout)} - NOT_BUNDLED
    return sorted((metadata.distribution(n) for n in names), key=lambda d: _normalize(d.metadata["Name"]))


def needed_on(target: Platform, imported: list[metadata.Distribution]) -> tuple[list[metadata.Distribution],
                                                                                   list[Requirement]]:
    """What the addon needs on `target`: the distributions it imports and everything they require there
    (modules imported later, such as an HTTP client's transport, count too), as installed here; and the
    requirements that hold only on `target` (pywin32 on Windows), which are not installed here. The
    server's own requirements (blendbus's) are not followed: only what the addon was seen to import."""
    env = {**_host_markers(), **target.markers, "python_version": BLENDER_PYTHON}
    found: dict[str, metadata.Distribution] = {}
    missing: dict[str, Requirement] = {}
    todo = [(dist, frozenset[str]()) for dist in imported]
    seen: set[tuple[str, str]] = set()
    while todo:
        dist, extras = todo.pop()
        name = _normalize(dist.metadata["Name"])
        found[name] = dist
        if name == ROOT_DISTRIBUTION:
            continue
        for spec in dist.requires or []:
            req = Requirement(spec)
            key = _normalize(req.name)
            if key in NOT_BUNDLED or (key, str(req)) in seen:
                continue
            if req.marker is not None and not any(req.marker.evaluate({**env, "extra": e}) for e in ("", *extras)):
                continue
            seen.add((key, str(req)))
            try:
                todo.append((metadata.distribution(req.name), frozenset(req.extras)))
            except metadata.PackageNotFoundError:
                missing.setdefault(key, req)
    ordered = sorted(found.values(), key=lambda d: _normalize(d.metadata["Name"]))
    return ordered, [Requirement(f"{r.name}{r.specifier}") for r in missing.values()]


def _host_markers() -> dict[str, str]:
    from packaging.markers import default_environment

    return dict(default_environment())


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


def build(out: Path | None = None, *, target_platform: str | None = None, plugins: PluginSet | None = None,
          cache: Path | None = None) -> list[Path]:
    """Write the extension zip for `target_platform` (default: this machine's; `all`: every platform);
    returns the paths written. `out` is a .zip path for one platform, else a folder (default: here)."""
    targets = _targets(target_platform)
    if out is not None and out.suffix == ".zip" and len(targets) > 1:
        raise ValueError("building for every platform writes several zips: give --out a folder")
    plugins = plugins or load_plugins()
    imported = imported_distributions()
    written = []
    for target in targets:
        path = out if out is not None and out.suffix == ".zip" else (out or Path.cwd()) / file_name(target)
        written.append(_build_one(path, target, plugins, imported, cache or _cache_dir()))
    return written


def _targets(name: str | None) -> list[Platform]:
    if name == ALL:
        return list(PLATFORMS.values())
    name = name or blender_platform()
    if name not in PLATFORMS:
        raise ValueError(f"blendbus builds the add-on for {', '.join(PLATFORMS)} (or {ALL}), not {name!r}")
    return [PLATFORMS[name]]


def _cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("blendbus")) / "addon-wheels"


def _build_one(out: Path, target: Platform, plugins: PluginSet, imported: list[metadata.Distribution],
               cache: Path) -> Path:
    addon_dir = locate(ADDON_PACKAGE)
    if addon_dir is None:
        raise RuntimeError("the blendbus_addon package is not installed")
    staging = out.parent / (out.name + ".wheels")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        wheels = _wheels(target, imported, staging, cache)
        _write_zip(out, target, plugins, addon_dir, wheels)
    finally:
        for wheel in staging.iterdir():
            wheel.unlink()
        staging.rmdir()
    return out


def _wheels(target: Platform, imported: list[metadata.Distribution], staging: Path, cache: Path) -> list[Path]:
    """One wheel per distribution the addon needs on `target`."""
    dists, only_there = needed_on(target, imported)
    wheels, fetch = [], []
    for dist in dists:
        if _normalize(dist.metadata["Name"]) == ROOT_DISTRIBUTION:
            wheels.append(wheel_from_source(dist, ["blendbus"], staging))  # the addon itself is the zip root
        elif _fits(dist, target):  # installed here, and as good there: repacked, nothing downloaded
            wheels.append(wheel_from_installed(dist, staging))
        else:
            fetch.append(Requirement(f"{dist.metadata['Name']}=={dist.version}"))
    return wheels + download_wheels(fetch + only_there, target, cache)


def _fits(dist: metadata.Distribution, target: Platform) -> bool:
    """Whether the installed wheel of `dist` serves `target` as it is: pure Python, or built for this very
    platform and no newer a system than `target` asks for (a glibc 2.34 wheel does not serve Blender's 2.28)."""
    if _is_editable(dist):
        return False
    platforms = set(_wheel_tag(dist).split("-")[2].split("."))
    return platforms == {"any"} or (target.name == blender_platform() and bool(platforms & set(target.wheel_tags)))


def download_wheels(wanted: list[Requirement], target: Platform, cache: Path) -> list[Path]:
    """A wheel of each requirement for `target` and CPython 3.11, from the package index (cached in
    `cache`). A release pinned here (`==`) that has no wheel for `target` is replaced by the newest one
    below it that has (macOS x64 wheels sometimes stop a release or two earlier)."""
    if not wanted:
        return []
    try:
        return _pip_download([str(r) for r in wanted], target, cache)
    except RuntimeError:  # one of them has no wheel there: find which, one at a time
        found = []
        for req in wanted:
            pinned = next((s.version for s in req.specifier if s.operator == "=="), None)
            try:
                found += _pip_download([str(req)], target, cache)
            except RuntimeError:
                if pinned is None:
                    raise
                found += _pip_download([f"{req.name}<={pinned}"], target, cache)
        return found


def _pip_download(specs: list[str], target: Platform, cache: Path) -> list[Path]:
    folder = cache / target.name
    folder.mkdir(parents=True, exist_ok=True)
    tags = [arg for tag in target.wheel_tags for arg in ("--platform", tag)]
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "--disable-pip-version-check", *tags, "--python-version", BLENDER_PYTHON,
                           "--implementation", "cp", "--dest", str(folder), *specs],
                          capture_output=True, text=True, timeout=1200)
    saved = re.findall(r"^\s*(?:Saved|File was already downloaded) (\S+\.whl)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or len(saved) != len(specs):
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        why = errors[-1] if errors else f"pip exited {done.returncode}"
        raise RuntimeError(f"no wheel of {', '.join(specs)} for {target.name} (CPython {BLENDER_PYTHON}): {why}")
    return [folder / Path(path).name for path in saved]


def _write_zip(out: Path, target: Platform, plugins: PluginSet, addon_dir: Path, wheels: list[Path]) -> None:
    manifest = (addon_dir / "blender_manifest.toml").read_text()
    extra = "wheels = [\n" + "".join(f'  "./wheels/{w.name}",\n' for w in wheels) + "]\n"
    extra += f'platforms = ["{target.name}"]\n'
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
