"""Paths an LLM passes, confined to the peer's output folder. bpy-free.

Every handler that writes or reads a file an LLM named goes through here (screenshots, renders,
exports, Rodin's input images), so the rule is written once: the path resolves, symlinks followed,
inside the output folder (`output_dir` preference; default a per-peer folder under the peer's state
dir). A relative path is relative to that folder; `//` is relative to the saved .blend, as in
Blender, and must land inside the folder too. Special files (FIFOs, devices, directories) are
refused, nothing is created outside the folder, and a written file is produced under a fresh
temporary name first, so what is read back is only ever what was just written.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}
"""Leading bytes of the image files a plugin may upload (WebP also carries 'WEBP' at offset 8)."""


class PathRefused(ValueError):
    """A path an LLM passed is outside the output folder, or not a plain file; the message says why."""


class OutputFolder:
    """The folder LLM-named files live in, resolved each time (the preference may change)."""

    def __init__(self, root: Callable[[], str | Path], blend_dir: Callable[[], str | None] = lambda: None) -> None:
        self._root, self._blend_dir = root, blend_dir

    @property
    def root(self) -> Path:
        """The folder itself, created on first use."""
        root = Path(os.path.realpath(os.path.expanduser(str(self._root()))))
        root.mkdir(parents=True, exist_ok=True)
        return root

    def resolve(self, raw: str) -> Path:
        """`raw` as an absolute path inside the folder, or PathRefused."""
        root = self.root
        text = str(raw).strip()
        if not text or "\0" in text:
            raise PathRefused(f"{raw!r} is not a file name")
        if text.startswith("//"):
            base = self._blend_dir()
            if not base:
                raise PathRefused(f"{raw!r} is relative to the .blend file, which is not saved yet;"
                                  " pass a name inside the output folder instead")
            candidate = os.path.join(base, text[2:])
        else:
            candidate = os.path.join(root, text)  # an absolute `text` replaces root here
        real = Path(os.path.realpath(candidate))
        if real != root and not real.is_relative_to(root):
            raise PathRefused(f"{raw!r} is outside this peer's output folder {root}: pass a name inside it"
                              " (such as 'renders/shot.png'), or change the peer preference 'output_dir'")
        return real

    def output(self, raw: str | None, *, suffix: str, stem: str) -> Path:
        """Where to write a new `suffix` file: `raw` inside the folder, or a fresh name from `stem`.

        A name without an extension gets `suffix`; another extension is refused. Missing folders
        are created (inside the folder only); an existing file must be a regular one."""
        if not raw:
            return self.root / f"{stem}-{os.urandom(4).hex()}{suffix}"
        path = self.resolve(raw)
        if not path.suffix:
            path = path.with_name(path.name + suffix)
        elif path.suffix.lower() != suffix.lower():
            raise PathRefused(f"{raw!r} must end in {suffix}")
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            raise PathRefused(f"{raw!r} exists and is not a regular file; choose another name")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @contextmanager
    def writing(self, final: Path) -> Iterator[Path]:
        """Yield a fresh temporary file beside `final` to write to; it becomes `final` on success."""
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".blendbus-", suffix=final.suffix)
        os.close(fd)
        try:
            yield Path(tmp)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def input(self, raw: str, *, max_bytes: int, magic: dict[bytes, str] = IMAGE_MAGIC) -> tuple[Path, bytes, str]:
        """Read an existing file inside the folder: (path, bytes, mime type). It must be a regular
        file no larger than `max_bytes` whose first bytes are one of `magic`."""
        path = self.resolve(raw)
        data = read_regular(path, max_bytes, what=repr(raw))
        for prefix, mime in magic.items():
            if data.startswith(prefix) and (mime != "image/webp" or data[8:12] == b"WEBP"):
                return path, data, mime
        kinds = ", ".join(sorted({m.partition("/")[2].upper() for m in magic.values()}))
        raise PathRefused(f"{raw!r} is not a {kinds} file")


def read_regular(path: Path, max_bytes: int, *, what: str | None = None) -> bytes:
    """A regular file's bytes, never following a final symlink and never blocking on a FIFO."""
    what = what or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise PathRefused(f"{what} does not exist in the output folder") from None
    except OSError as exc:
        raise PathRefused(f"{what} cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise PathRefused(f"{what} is not a regular file")
        if info.st_size > max_bytes:
            raise PathRefused(f"{what} is {info.st_size} bytes, above the limit of {max_bytes}")
        return fh.read(max_bytes + 1)[:max_bytes]
