"""`completion/complete`: a host's autocomplete for prompt arguments and resource-template variables,
from sources the plugins declare (a read-only command run on the caller's Blender). Real clients
over real HTTP, the Python test peer, and the scene plugin's sources in a real Blender."""

from __future__ import annotations

from types import SimpleNamespace

import mcp_types as types
import pytest

from blendbus import Command, Completion, DeclarationError, Prompt, PromptArgument, Resource, hookimpl
from blendbus.client import connect
from blendbus.plugins import PluginInfo, collect
from blendbus.testing import PythonPeer, make_server, serve_http
from blendbus.testing.blender import blender_peer, needs_bpy

from .nodeclients import run_node

pytestmark = pytest.mark.anyio
NAMES = ["Cube", "Camera", "Light", "cube.001", "Sun", *[f"Rock.{i:03d}" for i in range(150)]]
SOURCE = Completion("test_names", {"names": NAMES})


@hookimpl
def register_prompts(register):
    register(Prompt("probe_focus", "Look at one object", "Look at {name} {how}.", (
        PromptArgument("name", "An object", required=True, complete=SOURCE), PromptArgument("how", "How"))))


@hookimpl
def register_resources(register):
    register(Resource("probe://thing/{name}", "probe-thing", "test_echo", "A thing", complete={"name": SOURCE}))


PROBE = SimpleNamespace(register_prompts=register_prompts, register_resources=register_resources)


def prompt_ref(name: str) -> types.PromptReference:
    return types.PromptReference(type="ref/prompt", name=name)


async def test_a_declared_source_completes_what_the_user_types(blendbus_extra_plugins, tmp_path):
    server = make_server([*blendbus_extra_plugins, ("probe", PROBE)], state_dir=tmp_path)
    async with serve_http(server) as url, PythonPeer(lambda: connect(url)), connect(url, mode="legacy") as client:
        assert client.server_capabilities.completions is not None
        got = (await client.complete(prompt_ref("probe_focus"), {"name": "name", "value": "cu"})).completion
        assert got.values == ["Cube", "cube.001"] and got.total == 2 and not got.has_more  # any case, starts first
        got = (await client.complete(prompt_ref("probe_focus"), {"name": "name", "value": "ub"})).completion
        assert got.values == ["Cube", "cube.001"]  # then those that contain it
        got = (await client.complete(types.ResourceTemplateReference(type="ref/resource", uri="probe://thing/{name}"),
                                     {"name": "name", "value": ""})).completion
        assert len(got.values) == 100 and got.total == len(NAMES) and got.has_more  # MCP's cap: 100 a time
        for ref, argument in ((prompt_ref("probe_focus"), "how"), (prompt_ref("no_such_prompt"), "arg1")):
            got = (await client.complete(ref, {"name": argument, "value": "x"})).completion
            assert got.values == [] and not got.has_more  # nothing declared: nothing to offer, no error


async def test_without_a_blender_a_completion_is_empty_not_an_error(blendbus_extra_plugins, tmp_path):
    server = make_server([*blendbus_extra_plugins, ("probe", PROBE)], state_dir=tmp_path)
    async with serve_http(server) as url, connect(url) as client:
        got = (await client.complete(prompt_ref("probe_focus"), {"name": "name", "value": "c"})).completion
    assert got.values == []


def test_a_source_must_be_a_loaded_read_only_command():
    def commands(register):
        register(Command("probe_write", "writes", "probe.addon:write"))

    def prompts(command):
        def register_prompts(register):
            register(Prompt("probe_p", "p", "{x}", (PromptArgument("x", complete=Completion(command)),)))
        return register_prompts

    for command, why in (("probe_write", "must be read_only"), ("probe_none", "is not loaded")):
        found = collect([PluginInfo(name="probe", module=SimpleNamespace(
            register_commands=hookimpl(commands), register_prompts=hookimpl(prompts(command))))])
        assert why in found.plugins[0].error and "probe_p" not in found.prompts
    with pytest.raises(DeclarationError, match="not variables of"):
        Resource("probe://a/{id}", "a", "probe_write", complete={"name": Completion("probe_write")})


@needs_bpy
async def test_the_scene_completes_objects_materials_collections_and_node_types_in_real_blender(tmp_path):
    server = make_server(state_dir=tmp_path / "state")
    async with serve_http(server) as url, blender_peer(server, url, tmp_path), connect(url, mode="legacy") as client:
        ref = types.ResourceTemplateReference(type="ref/resource", uri="blender://scene/object/{name}")
        objects = (await client.complete(ref, {"name": "name", "value": "c"})).completion
        assert objects.values == ["Camera", "Cube"]  # the factory scene
        materials = (await client.complete(prompt_ref("restyle_material"), {"name": "material", "value": "mat"}))
        assert materials.completion.values == ["Material"]
        collections = (await client.complete(prompt_ref("tidy_collection"), {"name": "collection", "value": ""}))
        assert collections.completion.values == ["Collection"]
        ref = types.ResourceTemplateReference(type="ref/resource", uri="blender://node-type/{node_type}")
        nodes = (await client.complete(ref, {"name": "node_type", "value": "ShaderNodeBsdfP"})).completion
        assert nodes.values == ["ShaderNodeBsdfPrincipled"]
        geometry = (await client.complete(ref, {"name": "node_type", "value": "GeometryNodeMeshCube"})).completion
        assert geometry.values[0] == "GeometryNodeMeshCube"
        read = await client.read_resource("blender://node-type/ShaderNodeBsdfPrincipled")
        assert '"Base Color"' in read.contents[0].text
        seen = await run_node("http-complete", url, "blender://scene/object/{name}")  # the TypeScript SDK client
    assert seen["completions_capability"] == {}
    answers = seen["answers"]
    assert answers["c"]["values"] == ["Camera", "Cube"] and answers["CU"]["values"] == ["Cube"]
    assert answers[""] == {"values": ["Camera", "Cube", "Light"], "total": 3, "hasMore": False}
