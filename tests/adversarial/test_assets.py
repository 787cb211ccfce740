"""Hostile assets cannot read or write this machine's files (security round 3, #1 and #2).

#1, the attack: a model from the internet (Poly Pizza, Sketchfab, a generator) is a GLB whose image
is `{"uri": "../../../../secret.txt"}`, or an absolute path. Blender's importer loaded the file, the
import packed every image it made, and `blender_browse_data(path="images/<name>/packed_file")`
handed the bytes to an LLM-only token. OBJ material libraries and FBX texture paths did the same.

#2, the attack: an image named `../../../../x` made `blender_export_scene(format="gltf")` write
`x.png` wherever the Blender user can write, over an existing file; USD did the same from its
`textures/` folder.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from blendbus import protocol as p
from blendbus.testing.blender import needs_bpy, run_in_blender
from blendbus.testing.fakehttp import Response, fake_api

pytestmark = pytest.mark.anyio
SECRET = b"TOP-SECRET ssh key of the Blender user\n"


def gltf(image_uri: str | None = None, buffer_uri: str | None = None) -> tuple[dict, bytes]:
    """A textured triangle as glTF: its JSON and its binary buffer. `image_uri` names the texture's
    file; `buffer_uri` adds a second buffer, read as the triangle's texture coordinates."""
    positions = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)
    uvs = struct.pack("<6f", 0, 0, 1, 0, 0, 1)
    description = {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "Triangle"}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
        "textures": [{"source": 0}],
        "images": [{"uri": image_uri or "data:image/png;base64,", "name": "skin"}],
        "buffers": [{"byteLength": len(positions) + len(uvs)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(positions)},
                        {"buffer": 0, "byteOffset": len(positions), "byteLength": len(uvs)}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                       "min": [0, 0, 0], "max": [1, 1, 0]},
                      {"bufferView": 1, "componentType": 5126, "count": 3, "type": "VEC2"}],
    }
    if buffer_uri is not None:
        description["buffers"].append({"uri": buffer_uri, "byteLength": 24})
        description["bufferViews"].append({"buffer": 1, "byteOffset": 0, "byteLength": 24})
        description["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_0"] = 2
        description["accessors"].append({"bufferView": 2, "componentType": 5126, "count": 3, "type": "VEC2"})
    return description, positions + uvs


def glb(description: dict, binary: bytes) -> bytes:
    """The binary glTF container of a description and its buffer."""
    text = json.dumps(description).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text + struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def write_hostile_models(download: Path, secret: Path) -> None:
    """Every way we know a model names a file outside its download, each in a file `hostile-*`."""
    download.mkdir(parents=True)
    (download / "hostile-absolute.glb").write_bytes(glb(*gltf(image_uri=str(secret))))
    (download / "hostile-relative.glb").write_bytes(glb(*gltf(image_uri="../" + secret.name)))
    (download / "hostile-file-url.glb").write_bytes(glb(*gltf(image_uri=secret.as_uri())))
    description, binary = gltf(image_uri="../%73ecret.txt")  # percent-encoded, as URIs may be
    (download / "hostile-encoded.gltf").write_text(json.dumps(
        {**description, "buffers": [{**description["buffers"][0], "uri": "triangle.bin"}]}))
    (download / "triangle.bin").write_bytes(binary)
    (download / "hostile-buffer.glb").write_bytes(glb(*gltf(buffer_uri=str(secret))))  # read as mesh data
    obj = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl skin\nf 1/1 2/2 3/3\n"
    (download / "hostile-mtllib.obj").write_text(f"mtllib ../{secret.name}\n{obj}")
    (download / "skin.mtl").write_text(f"newmtl skin\nKd 1 1 1\nmap_Kd -s 1 1 1 {secret}\n")
    (download / "hostile-map.obj").write_text(f"mtllib skin.mtl\n{obj}")
    (download / "clean.glb").write_bytes(glb(*gltf()))


IMPORT_ALL = r"""
import json, sys, bpy
from pathlib import Path
from blendbus_addon.imports import import_model
download, secret = Path(sys.argv[1]), Path(sys.argv[2])
# An FBX whose texture is the secret, by a path relative to the download ("../secret.txt").
bpy.ops.mesh.primitive_plane_add()
material = bpy.data.materials.new("skin")
material.use_nodes = True
node = material.node_tree.nodes.new("ShaderNodeTexImage")
node.image = bpy.data.images.load(str(secret))
material.node_tree.links.new(node.outputs["Color"], material.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
bpy.context.object.data.materials.append(material)
bpy.ops.export_scene.fbx(filepath=str(download / "hostile-relative.fbx"), path_mode="RELATIVE", use_selection=True)
bpy.ops.wm.read_homefile(use_empty=True)
outcomes = {}
for model in sorted(download.glob("*.*")):
    if model.suffix not in (".glb", ".gltf", ".obj", ".fbx"):
        continue
    before = {"objects": len(bpy.data.objects), "images": len(bpy.data.images), "meshes": len(bpy.data.meshes)}
    try:
        import_model(model)
        outcome = "imported"
    except PermissionError as exc:
        outcome = str(exc)
    after = {"objects": len(bpy.data.objects), "images": len(bpy.data.images), "meshes": len(bpy.data.meshes)}
    outcomes[model.name] = {"outcome": outcome, "added": {k: after[k] - before[k] for k in after}}
leaked = [image.name for image in bpy.data.images if image.packed_file and b"TOP-SECRET" in bytes(image.packed_file.data)]
print(json.dumps({"outcomes": outcomes, "leaked": leaked}))
"""


@needs_bpy
def test_a_model_that_names_files_outside_its_download_imports_nothing(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    write_hostile_models(tmp_path / "download", secret)
    report = json.loads(run_in_blender(IMPORT_ALL, str(tmp_path / "download"), str(secret), workdir=tmp_path)
                        .strip().splitlines()[-1])
    outcomes = report["outcomes"]
    hostile = {name: o for name, o in outcomes.items() if name.startswith("hostile")}
    assert len(hostile) == 8, sorted(outcomes)
    for name, outcome in hostile.items():
        assert "refers to files outside its own download" in outcome["outcome"], (name, outcome)
        assert outcome["added"] == {"objects": 0, "images": 0, "meshes": 0}, (name, outcome)
    assert outcomes["clean.glb"] == {"outcome": "imported", "added": {"objects": 1, "images": 1, "meshes": 1}}
    assert report["leaked"] == []


@pytest.fixture
def hostile_pizza(tmp_path, request):
    """Poly Pizza's API and static host, on loopback, serving a model whose image is the secret."""
    secret = tmp_path / "secret.txt"  # the peer's temporary folders live in tmp_path (TMPDIR)
    secret.write_bytes(SECRET)
    model = glb(*gltf(image_uri=str(secret)))
    info = {"ID": "evil01", "Title": "Free Crate", "Attribution": "", "Licence": "CC0", "Creator": {"Username": "x"},
            "Download": "", "Tri Count": 1, "Category": "Objects", "Tags": [], "Animated": False}
    box: dict = {}
    table = {("GET", "/v1.1/model/evil01"): lambda req: Response(body={**info, "Download": f"{box['base']}/evil.glb"}),
             ("GET", "/evil.glb"): lambda req: Response(body=model, headers={"Content-Type": "model/gltf-binary"})}
    with fake_api(table) as (base, seen):
        box["base"] = base
        request.node.fake_url = base
        yield SimpleNamespace(base=base, seen=seen)


@pytest.fixture
def blendbus_peer_settings(request) -> list[str]:
    settings = ["allow_code_execution=true"]
    if hasattr(request.node, "fake_url"):
        settings += ["polypizza.enabled=true", "polypizza.api_key=k", f"polypizza.api_url={request.node.fake_url}/v1.1"]
    return settings


@needs_bpy
async def test_a_hostile_download_neither_imports_nor_hands_out_a_local_file(hostile_pizza, blendbus_bpy_client,
                                                                           blendbus_call):
    client, call = blendbus_bpy_client, blendbus_call
    env = await call(client, "blender_download_polypizza_model", {"model_id": "evil01"})
    assert env["status"] == p.FAILED and "refers to files outside its own download" in env["error"], env
    images = await call(client, "blender_browse_data", {"path": "images"})
    assert images["status"] == p.COMPLETED and "skin" not in {row["name"] for row in images["result"]["items"]}
    # What a scene does pack (here by a script) is shown by its size, never by its bytes.
    packed = await call(client, "blender_execute_code", {"code": (
        "import bpy, os\nimage = bpy.data.images.new('notes', 2, 2)\n"
        "image.filepath_raw = os.path.join(bpy.app.tempdir, 'notes.png')\nimage.file_format = 'PNG'\nimage.save()\n"
        "image.pack()\nprint(image.packed_file.size)")})
    size = int(packed["result"])
    data = await call(client, "blender_browse_data", {"path": "images/notes/packed_file"})
    shown = {row["name"]: row["value"] for row in data["result"]["items"]}
    assert shown["data"] == {"bytes": size} and shown["size"] == size
    small = await call(client, "blender_browse_data", {"path": "images/notes"})
    assert len({row["name"]: row["value"] for row in small["result"]["items"]}["pixels"]) == 16  # shown whole...
    many = await call(client, "blender_execute_code", {"code": "import bpy\nbpy.data.images.new('wide', 64, 64)"})
    assert many["status"] == p.COMPLETED
    wide = await call(client, "blender_browse_data", {"path": "images/wide"})
    pixels_shown = {row["name"]: row["value"] for row in wide["result"]["items"]}["pixels"]
    assert pixels_shown["length"] == 64 * 64 * 4 and len(pixels_shown["first"]) == 256  # ...a large one in part


EXPORT_SCENE = r"""
import bpy
for image in list(bpy.data.images):
    bpy.data.images.remove(image)
material = bpy.data.materials.new("skin")
material.use_nodes = True
names = ["../../../../../../escaped", "/{absolute}", "..", "\\..\\win"]  # the first lands on tmp_path/escaped
bsdf = material.node_tree.nodes["Principled BSDF"]
for name, socket in zip(names, ("Base Color", "Roughness", "Metallic", "Alpha")):
    node = material.node_tree.nodes.new("ShaderNodeTexImage")
    node.image = bpy.data.images.new(name, 4, 4)
    material.node_tree.links.new(node.outputs["Color"], bsdf.inputs[socket])
bpy.data.objects["Cube"].data.materials.clear()
bpy.data.objects["Cube"].data.materials.append(material)
print(sorted(i.name for i in bpy.data.images))
"""


@needs_bpy
async def test_an_export_writes_only_inside_the_output_folder(blendbus_bpy_client, blendbus_call, tmp_path):
    client, call = blendbus_bpy_client, blendbus_call
    folder = tmp_path / "peer-bpy-peer" / "output" / "bpy-peer"
    (tmp_path / "escaped.png").write_bytes(b"an existing file of the user's")
    scene = await call(client, "blender_execute_code", {"code": EXPORT_SCENE.replace("{absolute}", str(tmp_path)[1:])})
    assert scene["status"] == p.COMPLETED, scene["error"]

    def outside() -> set[Path]:
        """Files outside the output folder (Blender's own temporary folder aside)."""
        return {path for path in tmp_path.rglob("*") if path.is_file() and not path.is_relative_to(folder)
                and not any(part.startswith("blender_") for part in path.relative_to(tmp_path).parts)}

    before = outside()
    for fmt in ("gltf", "usd"):
        env = await call(client, "blender_export_scene", {"format": fmt, "filepath": f"deep/er/{fmt}/scene"})
        assert env["status"] == p.COMPLETED, env["error"]
        assert all(Path(f).is_relative_to(folder) for f in env["result"]["files"])
    assert outside() - before == set()
    assert (tmp_path / "escaped.png").read_bytes() == b"an existing file of the user's"
    written = json.loads((folder / "deep" / "er" / "gltf" / "scene.gltf").read_text())
    assert {image["uri"] for image in written["images"]} and all("/" not in image["uri"] and ".." not in image["uri"]
                                                                  for image in written["images"])
    names = await call(client, "blender_execute_code", {"code": "import bpy\nprint(sorted(i.name for i in bpy.data.images))"})
    assert names["result"] == scene["result"]  # the scene's own names are back as they were


async def test_image_urls_for_generators_are_http_only(blendbus_client):
    """Rodin's and Hunyuan3D's image URLs go to the provider, never fetched here; still, no local scheme."""
    for tool, arguments in (("blender_generate_hyper3d_model_via_images", {"input_image_urls": ["file:///etc/passwd"]}),
                            ("blender_generate_hunyuan3d_model", {"input_image_url": "file:///etc/passwd"})):
        result = await blendbus_client.call_tool(tool, arguments)
        env = result.structured_content
        assert env["status"] == p.INVALID and "input_image_url" in env["error"], env
