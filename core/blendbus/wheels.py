"""Wheels for a Blender extension: the platforms Blender runs on in pip's vocabulary, and a wheel of a
distribution repacked from what is installed here, built from an editable install's sources, or
fetched from the package index for another platform (CPython 3.11, Blender's Python).
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

from packaging.requirements import Requirement

from .sync import locate, package_files

BLENDER_PYTHON = "3.11"
"""The Python every supported Blender (4.2 to 5.0) embeds: wheels are for CPython 3.11."""


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


def blender_platform() -> str:
    """This machine in Blender's platform vocabulary (linux-x64, macos-arm64, windows-x64, ...)."""
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "arm64": "arm64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{arch}"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


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


def fits(dist: metadata.Distribution, target: Platform) -> bool:
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
