"""What a downloaded model file refers to outside itself. bpy-free.

A model from the internet (Sketchfab, Poly Pizza, a generator's output) is untrusted input. glTF
names its images and buffers by URI, OBJ names its material libraries and their texture maps by
path, and Blender's importers load whatever those name: an image `{"uri": "../../.ssh/id_rsa"}`
or an absolute path would be read, packed into the scene and handed to anyone who browses it. So
before an import, every reference a model makes must resolve inside the download's own folder;
`outside_references` lists those that do not. (FBX is binary: imports.py checks what its importer
loaded, after the fact, for every format.)
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

GLB_MAGIC = b"glTF"
"""The first four bytes of every binary glTF file."""
_JSON_CHUNK = 0x4E4F534A
MAX_DESCRIPTION_BYTES = 64 * 1024 * 1024
"""A glTF JSON part or an .mtl file larger than this is not a model anyone should import."""
MTL_MAPS = ("map_", "bump", "disp", "decal", "refl", "norm")
"""Keywords of .mtl lines that name a texture file."""


def resolves_inside(path: str | Path, folder: Path) -> bool:
    """Whether `path` (relative to `folder`, symlinks followed) resolves inside `folder`."""
    root = Path(os.path.realpath(folder))
    real = Path(os.path.realpath(os.path.join(root, path)))
    return real == root or real.is_relative_to(root)


def outside_references(model: Path, folder: Path) -> list[str]:
    """The references `model` makes to files outside `folder` (the download's root), as written."""
    suffix = model.suffix.lower()
    if suffix == ".gltf":
        found = _gltf_uris(json.loads(_read(model)), model.parent)
    elif suffix == ".glb":
        found = _gltf_uris(_glb_json(model), model.parent)
    elif suffix == ".obj":
        found = _obj_paths(model)
    else:
        return []
    return [shown for shown, resolved in found if resolved is None or not resolves_inside(resolved, folder)]


def _read(path: Path) -> bytes:
    if path.stat().st_size > MAX_DESCRIPTION_BYTES:
        raise ValueError(f"{path.name} is over {MAX_DESCRIPTION_BYTES} bytes")
    return path.read_bytes()


def _glb_json(model: Path) -> dict:
    with open(model, "rb") as fh:
        header = fh.read(20)
        if len(header) < 20 or header[:4] != GLB_MAGIC:
            raise ValueError(f"{model.name} is not a binary glTF file")
        length, kind = struct.unpack("<II", header[12:20])
        if kind != _JSON_CHUNK or length > MAX_DESCRIPTION_BYTES:
            raise ValueError(f"{model.name} does not start with a glTF JSON chunk")
        return json.loads(fh.read(length))


def _gltf_uris(description: dict, base: Path) -> Iterator[tuple[str, str | None]]:
    """(uri as written, the file it names or None for a non-file URL) of every image and buffer."""
    for kind in ("images", "buffers"):
        for entry in description.get(kind) or ():
            uri = entry.get("uri") if isinstance(entry, dict) else None
            if not isinstance(uri, str) or uri.startswith("data:"):
                continue  # embedded: in a buffer view, or a data URI
            parts = urlsplit(uri)
            if parts.scheme or parts.netloc:  # file://, http://, C:\ ...: nothing a download should name
                yield uri, None
            else:
                yield uri, os.path.join(base, unquote(uri))


def _obj_paths(model: Path) -> Iterator[tuple[str, str | None]]:
    """Every material library an OBJ names, and every texture map those libraries name."""
    for rest in _lines(model, ("mtllib",)):
        for name in _candidates(rest):
            yield name, os.path.join(model.parent, name)
            library = model.parent / name
            if resolves_inside(library, model.parent) and library.is_file():
                for map_rest in _lines(library, MTL_MAPS):
                    for texture in _candidates(map_rest):
                        yield texture, os.path.join(library.parent, texture)


def _lines(path: Path, keywords: tuple[str, ...]) -> Iterator[str]:
    for raw in _read(path).decode("utf-8", "replace").splitlines():
        line = raw.strip()
        word, _, rest = line.partition(" ")
        if word.lower().startswith(keywords) and rest.strip():
            yield rest.strip()


def _candidates(rest: str) -> list[str]:
    """What in the rest of a line may be a path: the whole of it (names with spaces) and each word
    that is not an option or a number. Checking all of them errs on the side of refusing."""
    words = [w for w in rest.split() if not w.startswith("-") and not _number(w)]
    return list(dict.fromkeys([rest, *words]))


def _number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
