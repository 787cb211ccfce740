"""`blendbus addon build`: the installable Blender extension zip, one per platform Blender runs on.

A zip holds the addon, `declarations.json` (every bundled plugin's commands and preferences: the
peer runs only what it declares itself, and the GUI shows the preferences before the first
connection), each loaded plugin's addon-side package under `plugin_handlers/`, and the wheels of
the distributions the addon imports, listed in the manifest's `wheels`, with `platforms` naming
the one platform the zip is for. Which distributions: exactly those whose modules the addon's own
modules import (measured by importing them, in a child Python), plus their dependencies that only
that platform needs (pywin32 on Windows): nothing of the server's (Redis, uvicorn's speedups).

The wheels (wheels.py) for this machine's platform are repacked from what is installed here (nothing is
downloaded); for another platform each is fetched with `pip download --only-binary=:all:` for that
platform and CPython 3.11 (Blender's Python), the installed version where that platform has it, and
cached (`~/.cache/blendbus/addon-wheels`). Files are named as Blender's own
`blender --command extension build --split-platforms` names them: `blendbus-0.4.3-windows_x64.zip`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import platformdirs
from packaging.requirements import Requirement

from blendbus_addon.declarations import Declarations

from . import __version__
from .plugins import PluginSet, load_plugins
from .sync import ADDON_PACKAGE, handler_package, locate, package_files
from .wheels import (BLENDER_PYTHON, PLATFORMS, Platform, blender_platform, download_wheels, fits, normalize,
                     wheel_from_installed, wheel_from_source)

ROOT_DISTRIBUTION = "blendbus"
EXTENSION_ID = "blendbus"
NOT_BUNDLED = {"bpy", "numpy", "pip", "setuptools", "wheel", "uvloop", "httptools"}
"""Never bundled: Blender itself, what Blender ships, installers, and what only makes the server faster
(blendbus.eventloop uses uvloop where it is installed; the addon runs on asyncio's own loop without it)."""


ALL = "all"


def file_name(target: Platform) -> str:
    """The zip's name, as Blender's `extension build --split-platforms` would give it."""
    return f"{EXTENSION_ID}-{__version__}-{target.file_suffix}.zip"


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
    names = {normalize(n) for n in json.loads(done.stdout)} - NOT_BUNDLED
    return sorted((metadata.distribution(n) for n in names), key=lambda d: normalize(d.metadata["Name"]))


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
        name = normalize(dist.metadata["Name"])
        found[name] = dist
        if name == ROOT_DISTRIBUTION:
            continue
        for spec in dist.requires or []:
            req = Requirement(spec)
            key = normalize(req.name)
            if key in NOT_BUNDLED or (key, str(req)) in seen:
                continue
            if req.marker is not None and not any(req.marker.evaluate({**env, "extra": e}) for e in ("", *extras)):
                continue
            seen.add((key, str(req)))
            try:
                todo.append((metadata.distribution(req.name), frozenset(req.extras)))
            except metadata.PackageNotFoundError:
                missing.setdefault(key, req)
    ordered = sorted(found.values(), key=lambda d: normalize(d.metadata["Name"]))
    return ordered, [Requirement(f"{r.name}{r.specifier}") for r in missing.values()]


def _host_markers() -> dict[str, str]:
    from packaging.markers import default_environment

    return dict(default_environment())


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
        if normalize(dist.metadata["Name"]) == ROOT_DISTRIBUTION:
            wheels.append(wheel_from_source(dist, ["blendbus"], staging))  # the addon itself is the zip root
        elif fits(dist, target):  # installed here, and as good there: repacked, nothing downloaded
            wheels.append(wheel_from_installed(dist, staging))
        else:
            fetch.append(Requirement(f"{dist.metadata['Name']}=={dist.version}"))
    return wheels + download_wheels(fetch + only_there, target, cache)


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
