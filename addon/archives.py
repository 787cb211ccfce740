"""Extracting downloaded archives without letting any member escape its folder (zip-slip)."""

from __future__ import annotations

import zipfile
from pathlib import Path

MAX_UNPACKED_BYTES = 4 * 1024**3


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract `archive` into `target` after checking every member; returns the extracted files."""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise ValueError(f"{archive.name} is not a zip archive") from None
    with zf:
        members = zf.infolist()
        for info in members:  # check them all before writing anything
            path = (root / info.filename).resolve()
            if not path.is_relative_to(root) or info.filename.startswith(("/", "\\")) or ".." in Path(
                    info.filename).parts:
                raise ValueError(f"refused archive member {info.filename!r}: it escapes the extraction folder")
        if sum(i.file_size for i in members) > MAX_UNPACKED_BYTES:
            raise ValueError(f"{archive.name} unpacks to more than {MAX_UNPACKED_BYTES} bytes")
        zf.extractall(root)
    return [root / i.filename for i in members if not i.is_dir()]
