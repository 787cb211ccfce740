"""The `blendbus` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .paging import DEFAULT_INLINE_RESULT_MAX_BYTES
from .protocol import LOG_LEVELS, TOKEN_ROLES

DEFAULT_URL = "http://127.0.0.1:8765/mcp"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blendbus", description="Drive Blender from LLMs over MCP.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    serve = sub.add_parser("serve", help="run the MCP server (streamable HTTP at /mcp; --stdio for one LLM client)")
    serve.add_argument("--stdio", action="store_true", help="also serve one LLM client on stdin/stdout")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("BLENDBUS_PORT") or 8765),
                       help="0 picks a free port (printed on stderr); default 8765, or BLENDBUS_PORT")
    serve.add_argument("--tokens", type=Path, help='JSON {"<bearer token>": "<user id>"}; makes auth mandatory')
    serve.add_argument("--state-dir", type=Path, help="where the job store lives (default: the platform state dir)")
    serve.add_argument("--backend", default=os.environ.get("BLENDBUS_BACKEND", "sqlite"), metavar="URL",
                       help="where jobs and peers live: sqlite (default: the state dir, one process) or"
                            " redis://HOST:PORT/DB?prefix=NAME (or redis+sentinel://S1:P,S2:P/MASTER?prefix=NAME, or"
                            " redis+cluster://N1:P,N2:P/?prefix=NAME), shared by every replica (docs/deployment.md)")
    serve.add_argument("--embedded-blender", action="store_true", help="start a headless Blender peer beside the server")
    serve.add_argument("--embedded-set", action="append", default=[], metavar="KEY=VALUE",
                       help="a preference for the embedded peer (repeatable)")
    serve.add_argument("--allowed-hosts", type=_names, default=[], metavar="H1,H2",
                       help="Host header values to accept besides loopback and the bound host (name or name:port)")
    serve.add_argument("--allowed-origins", type=_names, default=[], metavar="O1,O2",
                       help="Origin header values to accept, e.g. https://studio.example:8443 (default: none)")
    serve.add_argument("--inline-result-max-bytes", type=int, metavar="N", default=DEFAULT_INLINE_RESULT_MAX_BYTES,
                       help="send results larger than N bytes in pages (blender_get_job offset=...); 0 sends whole"
                            f" results, for clients configured for them (default {DEFAULT_INLINE_RESULT_MAX_BYTES})")
    serve.add_argument("--task-after-s", type=float, metavar="S", default=1.0,
                       help="a call from a client that speaks MCP tasks becomes a task after S seconds (default 1)")
    serve.add_argument("--text-result-max-bytes", type=int, metavar="N",
                       help="send results over N bytes only as structuredContent, not repeated as JSON text")
    serve.add_argument("--limit", dest="limits", action="append", default=[], metavar="NAME=VALUE",
                       help="set one of the server's limits (docs/limits.md), e.g. max_waits_per_user=16 (repeatable)")
    serve.add_argument("--tools", default=os.environ.get("BLENDBUS_TOOLS", "all"), metavar="PROFILE", help=(
        "which tools LLM clients see: all (default), core (code and scene), compact (three meta-tools that"
        " find, describe and call the rest), plugin or tool names (polyhaven,blender_render), or a file of them"))
    serve.add_argument("--trusted-proxies", type=_names, default=[], metavar="A1,A2",
                       help="addresses of proxies in front of the server (nginx): the per-address connection caps"
                            " do not apply to them, the per-user caps do")
    serve.add_argument("--oauth", metavar="builtin|ISSUER", default=os.environ.get("BLENDBUS_OAUTH"),
                       help="let MCP hosts sign people in with OAuth, besides --tokens: builtin (this server signs"
                            " them in with their personal tokens) or an OpenID provider's issuer URL (docs/auth.md)")
    serve.add_argument("--public-url", metavar="URL", default=os.environ.get("BLENDBUS_PUBLIC_URL"),
                       help="the URL clients reach this server at, behind any proxy (https://bus.example); OAuth"
                            " tokens must be minted for URL/mcp (default: http://HOST:PORT on loopback)")
    serve.add_argument("--oauth-audience", dest="oauth_audiences", action="append", default=[], metavar="AUD",
                       help="another audience that names this server in tokens, for issuers that cannot put"
                            " URL/mcp in aud (Entra ID's application id) (repeatable)")
    serve.add_argument("--oauth-user-claim", metavar="CLAIM", default="sub",
                       help="the access-token claim that names the blendbus user (default sub; e.g. email)")
    serve.add_argument("--oauth-client-id", metavar="ID", default=os.environ.get("BLENDBUS_OAUTH_CLIENT_ID"),
                       help="this server's client id at the issuer, to introspect opaque tokens (RFC 7662); the"
                            " secret is read from BLENDBUS_OAUTH_CLIENT_SECRET")

    peer = sub.add_parser("peer", help="run a headless Blender peer (bpy module) connected to a server")
    peer.add_argument("--server", default=os.environ.get("BLENDBUS_SERVER", DEFAULT_URL), metavar="URL[,URL...]",
                      help="the server's /mcp URL; several replicas' URLs, comma-separated, for failover")
    peer.add_argument("--token", default=os.environ.get("BLENDBUS_TOKEN"))
    peer.add_argument("--token-env", help=argparse.SUPPRESS)
    peer.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    peer.add_argument("--uuid", help="sticky client uuid (default: remembered in the state dir)")
    peer.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                      help="set an addon preference, e.g. allow_code_execution=true (repeatable)")
    peer.add_argument("--blend", type=Path, help="open this .blend file first")
    peer.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="NAME=MODULE",
                      help="also declare this plugin module, installed or not (a plugin under development)")
    peer.add_argument("--state-dir", type=Path, help="where the peer keeps its uuid and synced handlers")

    addon = sub.add_parser("addon", help="the Blender extension")
    addon_sub = addon.add_subparsers(dest="addon_verb", required=True, metavar="ACTION")
    build = addon_sub.add_parser("build", help="write the installable extension zip (addon, plugin handlers, wheels)")
    build.add_argument("--out", type=Path, help="a .zip path, or a folder for the zip(s) named as Blender names"
                       " them (blendbus-VERSION-PLATFORM.zip; default: this folder)")
    build.add_argument("--platform", metavar="P", help="linux-x64, macos-arm64, macos-x64, windows-x64, or all"
                       " (default: this machine's); other platforms' wheels are downloaded")

    install = sub.add_parser("install", help="add blendbus to an MCP host's configuration (or print the entry)")
    install.add_argument("host", choices=["claude-desktop", "claude-code", "cursor", "vscode", "mcp-json"],
                         help="the host; mcp-json prints the common {\"mcpServers\": ...} form for any other")
    install.add_argument("--url", help="a running server's /mcp URL: a remote entry instead of a local Blender")
    install.add_argument("--token", help="the bearer token for --url (sent in the Authorization header)")
    install.add_argument("--name", default="blender", help="the server's name in the host (default: blender)")
    install.add_argument("--config", type=Path, help="the configuration file (default: the host's own, for this OS)")
    install.add_argument("--print", dest="print_only", action="store_true", help="print the entry; write nothing")

    relay = sub.add_parser("relay", help="serve one stdio MCP client from a running server (local or hosted)")
    relay.add_argument("--server", default=os.environ.get("BLENDBUS_SERVER", DEFAULT_URL), metavar="URL")
    relay.add_argument("--token", default=os.environ.get("BLENDBUS_TOKEN"))

    ready = sub.add_parser("ready", help="wait until servers answer (for scripts that start them in the background)")
    ready.add_argument("server", nargs="?", default=os.environ.get("BLENDBUS_SERVER", DEFAULT_URL),
                       metavar="URL[,URL...]", help="the /mcp URLs to wait for (default: BLENDBUS_SERVER, or the local one)")
    ready.add_argument("--timeout", type=float, default=120.0, help="seconds to wait at most (default 120)")
    ready.add_argument("--peers", type=int, default=0, metavar="N",
                       help="also wait until N Blender peers are on the bus (of --token's user)")
    ready.add_argument("--token", default=os.environ.get("BLENDBUS_TOKEN"))

    token = sub.add_parser("token", help="manage bearer tokens")
    token_sub = token.add_subparsers(dest="token_verb", required=True, metavar="ACTION")
    token_new = token_sub.add_parser("new", help="print a fresh token; only its sha256 is stored")
    token_new.add_argument("user", help="the user id the token acts as")
    token_new.add_argument("--role", choices=list(TOKEN_ROLES), help=(
        "limit the token to LLM tools or to peer tools, or make it an operator's: every user's bus on the"
        " status page, no tools"))
    token_new.add_argument("--tools", metavar="PROFILE", help=(
        "what the token's LLM may list and call, within the server's --tools: core, compact, plugin or tool"
        " names (see `blendbus serve --tools`)"))
    token_new.add_argument("--tokens", type=Path, help="the tokens file (default: tokens.json in the state dir)")

    new = sub.add_parser("new-plugin", help="write a plugin skeleton whose tests pass out of the box")
    new.add_argument("name", help="plugin name, e.g. hello (tools become blender_hello_...)")
    new.add_argument("--dir", type=Path, help="where to write it (default: ./blendbus-NAME)")

    plugins = sub.add_parser("plugins", help="list plugins, versions, commands, gates and load errors")
    plugins.add_argument("--json", action="store_true")

    tools = sub.add_parser("tools", help="list the MCP tools the installed plugins provide")
    tools.add_argument("--json", action="store_true", help="the full tool definitions, as tools/list gives an LLM client")
    tools.add_argument("--tools", default="all", metavar="PROFILE",
                       help="what an LLM client lists with this profile (see `blendbus serve --tools`)")

    call = sub.add_parser("call", help="call one MCP tool and print the result as JSON")
    call.add_argument("tool")
    call.add_argument("arguments", nargs="?", default="{}", help="JSON object of arguments")
    call.add_argument("--server", default=os.environ.get("BLENDBUS_SERVER", DEFAULT_URL), metavar="URL[,URL...]",
                      help="the server's /mcp URL; several replicas' URLs, comma-separated, for failover")
    call.add_argument("--token", default=os.environ.get("BLENDBUS_TOKEN"))
    call.add_argument("--log-level", default="info", choices=LOG_LEVELS,
                      help="the job's log lines at or above this level are printed to stderr (default: info)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    verbs = {"serve": _serve, "peer": _peer, "addon": _addon, "token": _token, "new-plugin": _new_plugin,
             "plugins": _plugins, "tools": _tools, "call": _call, "install": _install, "relay": _relay,
             "ready": _ready}
    try:
        return verbs[args.verb](args)
    except BrokenPipeError:  # `blendbus call ... | head`: the reader left; that is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _serve(args: argparse.Namespace) -> int:
    from . import eventloop
    from .app import ServeOptions, default_state_dir, serve
    from .limits import Limits, set_limit

    limits = Limits(text_result_max_bytes=args.text_result_max_bytes,
                    inline_result_max_bytes=args.inline_result_max_bytes or None, task_after_s=args.task_after_s)
    try:
        for assignment in args.limits:
            set_limit(limits, assignment)
    except ValueError as exc:
        print(f"blendbus serve: {exc}", file=sys.stderr)
        return 2
    opts = ServeOptions(
        host=args.host, port=args.port, stdio=args.stdio, tokens=args.tokens,
        state_dir=args.state_dir or default_state_dir(), backend=args.backend,
        embedded_blender=args.embedded_blender, embedded_settings=args.embedded_set, limits=limits,
        allowed_hosts=args.allowed_hosts, allowed_origins=args.allowed_origins, trusted_proxies=args.trusted_proxies,
        tools=args.tools, oauth=args.oauth, public_url=args.public_url, oauth_user_claim=args.oauth_user_claim,
        oauth_client_id=args.oauth_client_id, oauth_audiences=args.oauth_audiences,
    )
    from .backends.base import JobStoreError

    try:
        eventloop.run(serve(opts))
    except KeyboardInterrupt:
        pass
    except (ValueError, OSError, JobStoreError) as exc:
        print(f"blendbus serve: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 2
    return 0


def _peer(args: argparse.Namespace) -> int:
    from .app import default_state_dir

    state_dir = args.state_dir or default_state_dir() / "peer"
    token = os.environ.get(args.token_env) if args.token_env else args.token
    settings: dict[str, str] = {}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"blendbus peer: --set takes KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        settings[key.strip()] = value
    os.environ.setdefault("BLENDER_USER_RESOURCES", str(state_dir / "blender-user"))
    if args.plugins:
        from blendbus_addon.declarations import PEER_PLUGINS_ENV, extra_plugins

        os.environ[PEER_PLUGINS_ENV] = ",".join(args.plugins)
        try:
            extra_plugins(os.environ[PEER_PLUGINS_ENV])
        except (ValueError, ImportError) as exc:
            print(f"blendbus peer: --plugin: {exc}", file=sys.stderr)
            return 2
    import importlib.util

    if importlib.util.find_spec("bpy") is None:
        print("blendbus peer needs Blender as a Python module: pip install 'blendbus[peer]' (bpy 5.0.1, Python 3.11)",
              file=sys.stderr)
        return 2
    try:
        import bpy  # noqa: F401 - loading it is the check: a system library it needs may be missing
    except (ImportError, OSError) as exc:
        from .systemlibs import missing_library

        print(f"blendbus peer: {missing_library(exc) or f'Blender (bpy) does not load: {exc}'}", file=sys.stderr)
        return 2
    from blendbus_addon import headless
    return headless.main(server=args.server, token=token, uuid=args.uuid, settings=settings,
                         blend=args.blend, state_dir=state_dir,
                         parent_pid=os.getppid() if args.exit_with_parent else None)


def _addon(args: argparse.Namespace) -> int:
    from .extension import build

    try:
        written = build(args.out, target_platform=args.platform)
    except (ValueError, RuntimeError) as exc:
        print(f"blendbus addon build: {exc}", file=sys.stderr)
        return 2
    for out in written:
        print(f"wrote {out} ({out.stat().st_size / 1024 / 1024:.1f} MiB)")
    print("install it in Blender (4.2 or newer): Edit > Preferences > Get Extensions > Install from Disk")
    return 0


def _token(args: argparse.Namespace) -> int:
    from .app import default_state_dir
    from .auth import add_token

    path = args.tokens or default_state_dir() / "tokens.json"
    try:
        if args.tools is not None:
            from .testing.kit import make_server

            make_server().profile(args.tools, files=False)  # refuse a profile these plugins cannot serve
        token = add_token(path, args.user, args.role, args.tools)
    except ValueError as exc:
        print(f"blendbus token new: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(f"stored its sha256 for user {args.user!r}{f' (role {args.role})' if args.role else ''} in {path};"
          f" serve with --tokens {path}. The token is shown only now.", file=sys.stderr)
    return 0


def _new_plugin(args: argparse.Namespace) -> int:
    from .plugins import installed_plugins
    from .scaffold import names, render

    taken = installed_plugins()
    dist = names(args.name)["__dist__"]
    if args.name in taken or dist in taken.values():
        print(f"blendbus new-plugin: a plugin named {args.name!r} is already installed ({taken.get(args.name, dist)});"
              " choose another name", file=sys.stderr)
        return 2
    dest = args.dir or Path(dist)
    try:
        files = render(args.name, dest)
    except ValueError as exc:
        print(f"blendbus new-plugin: {exc}", file=sys.stderr)
        return 2
    python = sys.executable  # this environment's Python: bare pip/pytest may be other ones, or none
    print(f"wrote {len(files)} files to {dest}. Next:\n  cd {dest}\n  {python} -m pip install -e '.[test]'\n"
          f"  {python} -m blendbus plugins\n  {python} -m pytest")
    return 0


def _tools(args: argparse.Namespace) -> int:
    from .testing.kit import make_server

    from .auth import ROLES
    from .server.builtin_tools import PEER
    from .listing import tokens, wire_bytes

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
    from . import __version__
    from .plugins import load_plugins

    plugins = load_plugins()
    return {"blendbus": __version__, "plugins": [p.describe() for p in plugins.plugins]}


def _plugins(args: argparse.Namespace) -> int:
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


def _call(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.arguments)
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        print(f"blendbus call: bad JSON arguments: {exc}", file=sys.stderr)
        return 2
    from . import eventloop

    return eventloop.run(_call_async(args.server, args.token, args.tool, arguments, args.log_level))


async def _call_async(url: str, token: str | None, tool: str, arguments: dict[str, Any], log_level: str) -> int:
    from mcp.shared.exceptions import MCPError

    from .client import ConnectError, connect, describe_error, root_cause, structured

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


def _install(args: argparse.Namespace) -> int:
    from .install import GENERIC, HOSTS, entry, install

    if args.token and not args.url:
        print("blendbus install: --token goes with --url (a local server needs none)", file=sys.stderr)
        return 2
    host = HOSTS.get(args.host)
    server = entry(host, url=args.url, token=args.token)
    if host is None or args.print_only:
        key = host.key if host else "mcpServers"
        print(json.dumps({key: {args.name: server}}, indent=2))
        if host is None and args.host != GENERIC:
            return 2
        return 0
    try:
        path = install(host, server, name=args.name, path=args.config)
    except (OSError, ValueError) as exc:
        print(f"blendbus install: {exc}", file=sys.stderr)
        return 2
    print(f"added {args.name!r} to {path} ({'a remote entry' if args.url else 'blendbus with its own Blender'});"
          f" restart {args.host} to load it. Its format: {host.documented}")
    return 0


def _relay(args: argparse.Namespace) -> int:
    from . import eventloop, relay

    try:
        eventloop.run(relay.relay(args.server, args.token))
    except KeyboardInterrupt:
        pass
    return 0


def _ready(args: argparse.Namespace) -> int:
    from . import eventloop

    return eventloop.run(_ready_async(args.server, args.timeout, args.peers, args.token))


async def _ready_async(servers: str, timeout: float, peers: int, token: str | None) -> int:
    """Wait until every server answers /healthz, then (with `peers`) until that many peers are on the bus."""
    import asyncio
    import time

    import httpx2

    from .client import ConnectError, call, connect, server_urls

    deadline = time.monotonic() + timeout
    urls = server_urls(servers)
    async with httpx2.AsyncClient(timeout=2) as http:
        for url in urls:
            while True:
                try:
                    if (await http.get(url.rsplit("/mcp", 1)[0] + "/healthz")).json().get("ok"):
                        break
                except (httpx2.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    print(f"blendbus ready: {url} did not answer within {timeout:g}s (is `blendbus serve` starting"
                          " there? its own output says why not)", file=sys.stderr)
                    return 1
                await asyncio.sleep(0.1)
    while peers:
        try:
            async with connect(servers, token) as client:
                while len((await call(client, "blender_list_clients", {}))["clients"]) < peers:
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    await asyncio.sleep(0.2)
            return 0
        except ConnectError as exc:
            print(f"blendbus ready: {exc}", file=sys.stderr)
            return 2
        except TimeoutError:
            print(f"blendbus ready: fewer than {peers} Blender peers joined within {timeout:g}s", file=sys.stderr)
            return 1
    return 0
