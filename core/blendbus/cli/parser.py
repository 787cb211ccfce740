"""Every verb and flag of the `blendbus` command, in one place (docs/cli.md lists them; a test holds
the two together)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..paging import DEFAULT_INLINE_RESULT_MAX_BYTES
from ..protocol import LOG_LEVELS, TOKEN_ROLES

DEFAULT_URL = "http://127.0.0.1:8765/mcp"

def comma_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]



def build_parser() -> argparse.ArgumentParser:
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
    serve.add_argument("--allowed-hosts", type=comma_list, default=[], metavar="H1,H2",
                       help="Host header values to accept besides loopback and the bound host (name or name:port)")
    serve.add_argument("--allowed-origins", type=comma_list, default=[], metavar="O1,O2",
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
    serve.add_argument("--trusted-proxies", type=comma_list, default=[], metavar="A1,A2",
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
