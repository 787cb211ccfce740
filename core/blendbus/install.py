"""`blendbus install HOST`: put blendbus in an MCP host's configuration, in that host's own format.

Each host keeps its MCP servers in a JSON file of its own, under a key of its own, and takes a
local (stdio) server and a remote (streamable HTTP) one in its own shape. The default entry runs
`blendbus serve --stdio --embedded-blender` (a server with its own headless Blender, and the bus a
GUI Blender can join); `--url URL --token T` makes it a remote entry with the bearer token in the
`Authorization` header, or, for a host whose file takes only stdio servers (Claude Desktop), a
stdio entry that relays to that URL (`blendbus relay`). The file is merged, never replaced: other
servers and settings stay, and a copy of the file as it was is written beside it first.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_NAME = "blender"
STDIO_ARGS = ("serve", "--stdio", "--embedded-blender")


@dataclass(frozen=True)
class Host:
    """An MCP host: where its configuration lives on each OS, and the shapes of its entries."""

    name: str
    key: str
    """The top-level key that maps server names to entries."""
    paths: dict[str, Callable[[], Path]]
    """OS (`sys.platform`) -> the user-wide configuration file."""
    stdio: Callable[[str, list[str], dict[str, str]], dict[str, Any]]
    remote: Callable[[str, dict[str, str]], dict[str, Any]] | None
    """None: the host's file takes only stdio servers; a remote bus is reached through `blendbus relay`."""
    documented: str
    """Where the host documents this format."""

    def path(self, platform: str = sys.platform) -> Path:
        return self.paths.get(platform, self.paths["linux"])()


def _home(*parts: str) -> Callable[[], Path]:
    return lambda: Path.home().joinpath(*parts)


def _app_data(*parts: str) -> Callable[[], Path]:
    return lambda: Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming").joinpath(*parts)


def _xdg_config(*parts: str) -> Callable[[], Path]:
    return lambda: Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config").joinpath(*parts)


def _plain_stdio(command: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    return {"command": command, "args": args, **({"env": env} if env else {})}


def _typed_stdio(command: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    return {"type": "stdio", **_plain_stdio(command, args, env)}


def _typed_http(url: str, headers: dict[str, str]) -> dict[str, Any]:
    return {"type": "http", "url": url, **({"headers": headers} if headers else {})}


def _plain_http(url: str, headers: dict[str, str]) -> dict[str, Any]:
    return {"url": url, **({"headers": headers} if headers else {})}


HOSTS: dict[str, Host] = {h.name: h for h in (
    Host("claude-desktop", "mcpServers",
         {"darwin": _home("Library", "Application Support", "Claude", "claude_desktop_config.json"),
          "win32": _app_data("Claude", "claude_desktop_config.json"),
          "linux": _xdg_config("Claude", "claude_desktop_config.json")},
         _plain_stdio, None, "https://modelcontextprotocol.io/quickstart/user"),
    Host("claude-code", "mcpServers", {"linux": _home(".claude.json")}, _typed_stdio, _typed_http,
         "https://docs.anthropic.com/en/docs/claude-code/mcp"),
    Host("cursor", "mcpServers", {"linux": _home(".cursor", "mcp.json")}, _plain_stdio, _plain_http,
         "https://docs.cursor.com/context/model-context-protocol"),
    Host("vscode", "servers",
         {"darwin": _home("Library", "Application Support", "Code", "User", "mcp.json"),
          "win32": _app_data("Code", "User", "mcp.json"), "linux": _xdg_config("Code", "User", "mcp.json")},
         _typed_stdio, _typed_http, "https://code.visualstudio.com/docs/copilot/reference/mcp-configuration"),
)}
GENERIC = "mcp-json"
"""Not a host: print the common `{"mcpServers": {...}}` form, for any other client."""


def blendbus_command() -> str:
    """The `blendbus` executable of this installation, by its absolute path (hosts start it themselves,
    without this shell's PATH)."""
    beside = Path(sys.executable).parent / ("blendbus.exe" if sys.platform == "win32" else "blendbus")
    return str(beside if beside.exists() else shutil.which("blendbus") or beside)


def entry(host: Host | None, *, url: str | None = None, token: str | None = None,
          command: str | None = None, args: list[str] | None = None) -> dict[str, Any]:
    """The configuration entry for blendbus in `host`'s shape (None: the common mcpServers shape)."""
    command = command or blendbus_command()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if url is None:
        return (host.stdio if host else _plain_stdio)(command, list(args or STDIO_ARGS), {})
    if host is not None and host.remote is None:  # stdio only: relay to the remote bus
        return host.stdio(command, ["relay", "--server", url], {"BLENDBUS_TOKEN": token} if token else {})
    return (host.remote if host else _plain_http)(url, headers)  # type: ignore[misc]


def install(host: Host, server: dict[str, Any], *, name: str = DEFAULT_NAME, path: Path | None = None) -> Path:
    """Merge `server` under `name` into the host's configuration file; returns the file. The file as it
    was is copied beside it first (`<file>.<time>.bak`); other servers and settings are kept."""
    path = path or host.path()
    config: dict[str, Any] = {}
    if path.exists():
        text = path.read_text(encoding="utf-8")
        try:
            config = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); fix or move it, then run this again") from None
        if not isinstance(config, dict):
            raise ValueError(f"{path} does not hold a JSON object; fix or move it, then run this again")
        shutil.copy2(path, _backup_name(path))
    servers = config.get(host.key)
    if servers is not None and not isinstance(servers, dict):
        raise ValueError(f"{path}: {host.key!r} is not an object; fix it, then run this again")
    config[host.key] = {**(servers or {}), name: server}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if path.exists():
        tmp.chmod(path.stat().st_mode & 0o777)
    if token_in(server):
        tmp.chmod(0o600)  # it holds a bearer token now
    tmp.replace(path)
    return path


def _backup_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup, n = path.with_name(f"{path.name}.{stamp}.bak"), 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.{stamp}-{n}.bak")
    return backup


def token_in(server: dict[str, Any]) -> bool:
    return "Authorization" in server.get("headers", {}) or "BLENDBUS_TOKEN" in server.get("env", {})
