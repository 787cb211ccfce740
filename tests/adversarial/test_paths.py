"""Paths an LLM passes stay inside the peer's output folder (security round 2, #1).

The attack: `blender_get_viewport_screenshot(filepath="/etc/hostname")` returned that file as the
"image", created directories anywhere, overwrote .png files, and a FIFO froze the peer; Rodin's
`input_image_paths` uploaded any local file. Replayed against a real Blender peer, and against the
bpy-free `OutputFolder` every handler uses.
"""

from __future__ import annotations

import base64
import os
import threading

import pytest

from blendbus import protocol as p
from blendbus.testing.blender import needs_bpy
from blendbus_addon.paths import OutputFolder, PathRefused

pytestmark = pytest.mark.anyio
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@needs_bpy
async def test_the_screenshot_tool_reads_and_writes_only_inside_the_output_folder(blendbus_bpy_client, tmp_path):
    client = blendbus_bpy_client
    folder = tmp_path / "peer-bpy-peer" / "output" / "bpy-peer"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.png").write_bytes(PNG)
    (outside / "secret.txt").write_text("secret")
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "pipe.png")
    os.symlink(outside / "secret.txt", folder / "link.png")
    attempts = {
        "/etc/hostname": "outside this peer's output folder",
        str(outside / "secret.txt"): "outside this peer's output folder",
        str(outside / "keep.png"): "outside this peer's output folder",
        str(outside / "new" / "dir" / "x.png"): "outside this peer's output folder",
        "../../../outside/keep.png": "outside this peer's output folder",
        "link.png": "outside this peer's output folder",
        "pipe.png": "is not a regular file",
        "//next-to-blend.png": "not saved yet",
        "notes.txt": "must end in .png",
    }
    for filepath, why in attempts.items():
        result = await client.call_tool("blender_get_viewport_screenshot", {"filepath": filepath, "max_size": 32})
        env = result.structured_content
        assert env["status"] == p.FAILED and why in env["error"], (filepath, env["error"])
        assert not [c for c in result.content if c.type == "image"]
    assert (outside / "keep.png").read_bytes() == PNG and not (outside / "new").exists()
    assert sorted(os.listdir(outside)) == ["keep.png", "secret.txt"]
    # The peer is not frozen, and an honest request gets exactly the image it wrote.
    result = await client.call_tool("blender_get_viewport_screenshot", {"filepath": "views/ok.png", "max_size": 32})
    env = result.structured_content
    assert env["status"] == p.COMPLETED and env["result"]["filepath"] == str(folder / "views" / "ok.png")
    image = next(c for c in result.content if c.type == "image")
    assert base64.b64decode(image.data) == (folder / "views" / "ok.png").read_bytes()
    assert [n for n in os.listdir(folder / "views") if n.startswith(".blendbus-")] == []  # no temporary left


def test_output_folder_rules(tmp_path):
    root, outside = tmp_path / "out", tmp_path / "elsewhere"
    outside.mkdir()
    blend = {"dir": None}
    folder = OutputFolder(lambda: root, lambda: blend["dir"])
    assert folder.output("a/b.png", suffix=".png", stem="x") == root / "a" / "b.png" and (root / "a").is_dir()
    assert folder.output(None, suffix=".png", stem="view").parent == root
    for raw in ("/etc/passwd", "../elsewhere/x.png", str(outside / "x.png"), "a/../../elsewhere/x.png", "a\0b"):
        with pytest.raises(PathRefused):
            folder.output(raw, suffix=".png", stem="x")
    blend["dir"] = str(root / "scenes")  # `//` is relative to the saved .blend, and must stay inside
    assert folder.resolve("//shot.png") == root / "scenes" / "shot.png"
    blend["dir"] = str(outside)
    with pytest.raises(PathRefused, match="outside"):
        folder.resolve("//shot.png")


def test_inputs_must_be_images_in_the_folder_and_never_block(tmp_path):
    root = tmp_path / "out"
    folder = OutputFolder(lambda: root)
    assert folder.root == root  # created on first use
    (root / "ref.png").write_bytes(PNG)
    (root / "fake.png").write_text("#!/bin/sh\necho not an image\n")
    (root / "big.png").write_bytes(PNG + b"\0" * 2000)
    os.mkfifo(root / "fifo.png")
    (tmp_path / "secret.png").write_bytes(PNG)
    os.symlink(tmp_path / "secret.png", root / "link.png")
    assert folder.input("ref.png", max_bytes=1000)[1:] == (PNG, "image/png")
    outcome: dict[str, object] = {}
    worker = threading.Thread(target=lambda: outcome.update(fifo=_refusal(folder, "fifo.png")))
    worker.start()
    worker.join(5)
    assert not worker.is_alive() and "not a regular file" in str(outcome["fifo"])  # answered, not frozen
    assert "is not a" in _refusal(folder, "fake.png")
    assert "above the limit" in _refusal(folder, "big.png", max_bytes=100)
    assert "outside" in _refusal(folder, "link.png") and "outside" in _refusal(folder, str(tmp_path / "secret.png"))
    assert "does not exist" in _refusal(folder, "missing.png")


def _refusal(folder: OutputFolder, raw: str, max_bytes: int = 1000) -> str:
    with pytest.raises(PathRefused) as info:
        folder.input(raw, max_bytes=max_bytes)
    return str(info.value)
