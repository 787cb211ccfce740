"""`blendbus tools`, `plugins` and `call`: the bus from a shell — what it lists, which plugins it
loaded, and one tool call."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

def cmd_tools(args: argparse.Namespace) -> int:
    from ..testing.kit import make_server

    from ..auth import ROLES
    from ..server.builtin_tools import PEER
    from ..listing import tokens, wire_bytes

    server = make_server()
    try:
        toolset = server.tools.profile(args.tools)
    except ValueError as exc:
        print(f"blendbus tools: {exc}", file=sys.stderr)
        return 2
    listed = server.tools.listed(frozenset(ROLES), toolset, apps=False)
    tools = sorted(listed, key=lambda t: t.name)
    if args.json:
        print(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools], indent=2))
        return 0
    for tool in tools:
        cmd = server.plugins.by_tool(tool.name)
        gate = f"  [gate: {cmd.gate}]" if cmd and cmd.gate else ""
        print(f"{tool.name}{gate}\n    {(tool.description or '').splitlines()[0]}")
    size, peers = wire_bytes(listed), len(server.tools.listed(frozenset({PEER}), toolset, apps=False))
    print(f"\n{len(listed)} tools listed to an LLM client with --tools {args.tools}: {size:,} bytes of JSON,"
          f" about {tokens(size):,} tokens (and {peers} peer tools, listed to peer tokens only)", file=sys.stderr)
    return 0



def plugin_report() -> dict[str, Any]:
    from .. import __version__
    from ..plugins import load_plugins

    plugins = load_plugins()
    return {"blendbus": __version__, "plugins": [p.describe() for p in plugins.plugins]}



def cmd_plugins(args: argparse.Namespace) -> int:
    report = plugin_report()
    failed = 1 if any(p["error"] for p in report["plugins"]) else 0
    if args.json:
        print(json.dumps(report, indent=2))
        return failed
    print(f"blendbus {report['blendbus']}")
    for p in report["plugins"]:
        print(f"\n{p['name']}  {p['distribution'] or '(not installed)'} {p['version'] or ''}".rstrip())
        if p["error"]:
            print(f"  LOAD ERROR: {p['error']}")
            continue
        print(f"  hooks: {', '.join(p['hooks'])}")
        for c in p["commands"]:
            gate = f"  [gate: {c['gate']}]" if c["gate"] else ""
            print(f"  {c['tool']}{gate}")
        for uri in p["resources"]:
            print(f"  resource {uri}")
    return failed



def cmd_call(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.arguments)
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        print(f"blendbus call: bad JSON arguments: {exc}", file=sys.stderr)
        return 2
    from .. import eventloop

    return eventloop.run(_call_async(args.server, args.token, args.tool, arguments, args.log_level))


async def _call_async(url: str, token: str | None, tool: str, arguments: dict[str, Any], log_level: str) -> int:
    from mcp.shared.exceptions import MCPError

    from ..client import ConnectError, connect, describe_error, root_cause, structured

    try:
        async with connect(url, token, log_level=log_level, logging_callback=_print_log_line) as client:
            result = await client.call_tool(tool, arguments)
    except ConnectError as exc:
        print(f"blendbus call: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a CLI reports, it does not trace back
        refused = root_cause(exc)
        if isinstance(refused, MCPError):  # the server refused the call itself (an unknown tool)
            print(json.dumps({"error": refused.message, "code": refused.code}, indent=2))
            return 1
        print(f"blendbus call: {url}: {describe_error(exc)}", file=sys.stderr)
        return 2
    print(json.dumps(structured(result), indent=2))
    return 1 if result.is_error else 0


async def _print_log_line(params: Any) -> None:
    """A job's log line, as `blendbus call` shows it: on stderr, so stdout stays the result's JSON."""
    print(f"{params.logger or 'server'} {params.level}: {params.data}", file=sys.stderr)
