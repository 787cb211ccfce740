"""Handlers of the test plugin. Plain Python, so they run on the Python test peer and in Blender."""

from __future__ import annotations

import time
from typing import Any


def noop() -> None:
    return None


def echo(value: Any) -> dict[str, Any]:
    return {"echo": value}


def sleep(seconds: float, job: Any, steps: int = 0) -> float:
    """Sleep `seconds`, in `steps` that each report progress; a cancelled job stops soon and answers -1."""
    for i in range(steps):
        time.sleep(seconds / max(steps, 1))
        job.progress((i + 1) / steps, f"step {i + 1} of {steps}")
        if job.cancelled:
            return -1.0
    deadline = time.monotonic() + (0 if steps else seconds)
    while (left := deadline - time.monotonic()) > 0:  # in slices, so a cancelled job ends soon (as it should)
        time.sleep(min(left, 0.05))
        if job.cancelled:
            return -1.0
    return seconds


def log(lines: list[list[str]], job: Any) -> int:
    """Write each [level, message] to the job's log, then raise one Python warning (written there too),
    afresh each call: Python would otherwise show a warning from one place in a module once."""
    import warnings

    for level, message in lines:
        job.log(level, message)
    warnings.warn_explicit("a thing the caller should know about", UserWarning, __file__, 1, registry=None)
    return len(lines)


def names(names: list[str]) -> dict[str, Any]:
    """Names as a scene listing shapes them, for completion sources."""
    return {"items": [{"name": name} for name in names]}


def fail(message: str) -> None:
    raise RuntimeError(message)


def size(nbytes: int) -> str:
    return "x" * nbytes


def count(text: str) -> dict[str, int]:
    return {"characters": len(text), "words": len(text.split())}


def background(seconds: float, job: Any, steps: int = 0) -> Any:
    """A generator handler: the sleep runs off the main thread, the answer is built on it."""
    import threading

    worker = yield job.background(lambda: (time.sleep(seconds), threading.current_thread().name)[1])
    if steps < 0:
        raise ValueError("never")
    return {"slept": seconds, "worker": worker, "answered_on": threading.current_thread().name}


def image() -> dict[str, Any]:
    """A 96x64 colour gradient as a PNG image result (written by hand: no imaging library needed)."""
    import base64
    import struct
    import zlib

    width, height = 96, 64
    rows = b"".join(b"\0" + bytes(c for x in range(width) for c in (x * 255 // width, y * 255 // height, 160))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return {"size": [width, height], "_images": [{"data": base64.b64encode(png).decode(), "mime_type": "image/png"}]}


def ask(question: str, job: Any) -> Any:
    """A generator handler that asks the person behind the caller for a name, and returns the answer."""
    answer = yield job.ask(question, {"type": "object", "required": ["name"],
                                      "properties": {"name": {"type": "string", "title": "Name"}}})
    return {"action": answer.action, "content": answer.content, "reason": answer.reason}


def sample(prompt: str, job: Any) -> Any:
    """A generator handler that asks the caller's model, and returns what it said."""
    reply = yield job.sample(prompt, max_tokens=100, system_prompt="Answer in one word.")
    return {"action": reply.action, "text": reply.text, "model": (reply.content or {}).get("model"),
            "reason": reply.reason}


def content(broken: bool = False) -> dict[str, Any]:
    """A result with every kind of content block: an image, a short tone (WAV), an embedded text and
    binary resource, and a resource link; `broken` makes the audio block invalid."""
    import base64
    import io
    import math
    import wave

    tone = io.BytesIO()
    with wave.open(tone, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(int(8000 * math.sin(i / 8000 * 440 * 2 * math.pi)).to_bytes(2, "little", signed=True)
                                 for i in range(800)))
    audio = base64.b64encode(tone.getvalue()).decode()
    return {"note": "every kind of content", "_images": image()["_images"], "_content": [
        {"type": "audio", "data": "not base64!" if broken else audio, "mime_type": "audio/wav"},
        {"type": "resource", "uri": "blender://scene/object/Cube", "mime_type": "application/json",
         "text": '{"name": "Cube"}'},
        {"type": "resource", "uri": "file:///renders/cube.bin", "mime_type": "application/octet-stream",
         "blob": base64.b64encode(b"\x00\x01\x02").decode()},
        {"type": "resource_link", "uri": "blender://scene", "name": "scene", "mime_type": "application/json",
         "description": "The whole scene"},
    ]}


def visit(url: str, job: Any) -> Any:
    """A generator handler that sends the person to a page (URL-mode elicitation), and says how they answered."""
    answer = yield job.ask_url("Open this page to accept the licence", url)
    return {"action": answer.action, "reason": answer.reason}
