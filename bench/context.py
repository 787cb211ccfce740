"""What the tool list costs an LLM's context: per plugin and per profile, and a scripted task of five
calls through a real Blender peer with the full list against the same task through the three
meta-tools of `--tools compact`.

Bytes are compact JSON as the client receives it; tokens are bytes / 3.5 (listing.TOKEN_BYTES). The
task counts what a host puts in the model's context: the tool list once, then each call's name and
arguments and each result's content.

    python -m bench.context [--no-blender]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from blendbus import eventloop
from blendbus.auth import ROLES
from blendbus.client import connect
from blendbus.listing import tokens, wire_bytes
from blendbus.meta_tools import CALL, DESCRIBE, FIND
from blendbus.testing import make_server, serve_http
from blendbus.testing.blender import blender_peer

TASK = [  # (what an LLM would search for, tool, arguments)
    ("scene info", "blender_get_scene_info", {}),
    ("run python code", "blender_execute_code",
     {"code": "bpy.ops.mesh.primitive_cube_add(location=(1, 2, 0)); bpy.context.object.name = 'Box'"}),
    ("object info", "blender_get_object_info", {"name": "Box"}),
    ("python api lookup", "blender_lookup_api", {"identifier": "bpy.types.Object.location"}),
    ("list objects", "blender_list_objects", {"limit": 10}),
]


def lists() -> dict[str, Any]:
    """The default list per plugin, and each profile's whole list."""
    server = make_server()
    llm = frozenset(ROLES)
    default = server.tools.listed(llm, server.tools.profile("all"), apps=False)
    per_plugin: dict[str, list[Any]] = {}
    for tool in default:
        cmd = server.plugins.by_tool(tool.name)
        owner = server.plugins.owner[cmd.name].name if cmd else server.tools.builtin[tool.name].plugin or "bus"
        per_plugin.setdefault(owner, []).append(tool)
    return {
        "plugins": [{"plugin": name, "tools": len(tools), "bytes": wire_bytes(tools)}
                    for name, tools in sorted(per_plugin.items())],
        "profiles": [{"profile": spec, "tools": len(listed), "bytes": wire_bytes(listed)}
                     for spec in ("all", "core", "compact")
                     for listed in [server.tools.listed(llm, server.tools.profile(spec), apps=False)]],
    }


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


async def task() -> dict[str, Any]:
    """The scripted task through the full list and through the meta-tools, on one real Blender."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for profile in ("all", "compact"):
            server = make_server(tools=profile)
            async with serve_http(server) as url, blender_peer(server, url, Path(tmp), "allow_code_execution=true",
                                                               uuid=f"ctx-{profile}"), connect(url) as client:
                listed = (await client.list_tools()).tools
                cost = {"list": wire_bytes(listed), "calls": 0, "results": 0, "requests": 0}

                async def use(name: str, arguments: dict[str, Any]) -> Any:
                    result = await client.call_tool(name, arguments)
                    cost["requests"] += 1
                    cost["calls"] += _size({"name": name, "arguments": arguments})
                    cost["results"] += sum(_size(c.model_dump(mode="json", exclude_none=True)) for c in result.content)
                    assert not result.is_error, result.content
                    return result.structured_content

                for query, tool, arguments in TASK:
                    if profile == "compact":
                        found = await use(FIND, {"query": query})
                        assert tool in [t["name"] for t in found["tools"]], (query, found)
                        await use(DESCRIBE, {"name": tool})
                        await use(CALL, {"name": tool, "arguments": arguments})
                    else:
                        await use(tool, arguments)
                cost["total"] = cost["list"] + cost["calls"] + cost["results"]
                out[profile] = cost
    return out


def run(blender: bool = True) -> dict[str, Any]:
    results = lists()
    if blender:
        results["task"] = eventloop.run(task())
    return results


def table(results: dict[str, Any]) -> str:
    rows = ["| plugin | tools | bytes | tokens |", "|---|---|---|---|"]
    rows += [f"| {r['plugin']} | {r['tools']} | {r['bytes']:,} | {tokens(r['bytes']):,} |" for r in results["plugins"]]
    total = sum(r["bytes"] for r in results["plugins"])
    rows.append(f"| **all (default)** | {sum(r['tools'] for r in results['plugins'])} | {total:,} | {tokens(total):,} |")
    rows += ["", "| `--tools` | tools listed | bytes | tokens |", "|---|---|---|---|"]
    rows += [f"| {r['profile']} | {r['tools']} | {r['bytes']:,} | {tokens(r['bytes']):,} |" for r in results["profiles"]]
    if "task" in results:
        rows += ["", "| five-call task | requests | tool list | calls | results | total bytes | total tokens |",
                 "|---|---|---|---|---|---|---|"]
        for profile, c in results["task"].items():
            rows.append(f"| `--tools {profile}` | {c['requests']} | {c['list']:,} | {c['calls']:,} | {c['results']:,}"
                        f" | {c['total']:,} | {tokens(c['total']):,} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-blender", action="store_true", help="only the lists, no task through a real Blender")
    print(table(run(blender=not parser.parse_args().no_blender)))


if __name__ == "__main__":
    main()
