"""Building a server in-process and talking to it, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client

from ..backends import open_backend
from ..dispatch import Hub
from ..limits import Limits
from ..paging import PAGE_FIELDS
from ..plugins import load_plugins
from ..server import BlendbusServer

BUNDLED = "scene,polyhaven,sketchfab,rodin,hunyuan3d,polypizza"
"""The plugins shipped with blendbus (`blendbus[all]`), as BLENDBUS_LOAD_PLUGINS names them."""


def make_server(
    extra: Iterable[tuple[str, object]] = (),
    *,
    state_dir: Path | None = None,
    limits: Limits | None = None,
    env: dict[str, str] | None = None,
    backend: str | None = None,
    tools: str = "all",
) -> BlendbusServer:
    """A server with the installed plugins plus `extra`, on `backend` (a URL as `blendbus serve --backend`
    takes; default: a SQLite store under state_dir, or in memory), with the tools profile `tools`."""
    plugins = load_plugins(extra=extra, env=env)
    limits = limits or Limits()
    return BlendbusServer(plugins, Hub(open_backend(backend, state_dir=state_dir, grace_s=limits.peer_grace_s), limits),
                          tools=tools)


async def peer_uuids(server: BlendbusServer, user_id: str = "local") -> set[str]:
    """The uuids of the peers registered on a user's bus."""
    return {rec.uuid for rec in await server.hub.peers.list(user_id)}


def in_memory(server: BlendbusServer, mode: str = "auto") -> Callable[[], AbstractAsyncContextManager[Client]]:
    """A connector for the Python test peer that speaks MCP to `server` in-process."""
    return lambda: Client(server.mcp, mode=mode)


async def call_envelope(client: Client, tool: str, arguments: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """Call a tool and return its structured content (the envelope for dispatch tools)."""
    result = await client.call_tool(tool, arguments or {}, **kw)
    if result.structured_content is not None:
        value = dict(result.structured_content)
    else:
        value = json.loads(result.content[0].text)
    return value


async def run_code(client: Client, code: str) -> str:
    """Run Python in the Blender peer (`blender_execute_code`); its stdout, or AssertionError with the error."""
    env = await call_envelope(client, "blender_execute_code", {"code": code})
    assert env["status"] == "completed", env["error"]
    return str(env["result"])


async def eventually(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy, and return that; AssertionError after `seconds`."""
    import anyio

    try:
        with anyio.fail_after(seconds):
            while not (value := await check()):
                await anyio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what}: not seen within {seconds:g}s") from None
    return value


async def call_whole(client: Client, tool: str, arguments: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """Like `call_envelope`, with a result too large for one answer fetched page by page (as an LLM
    client does with blender_get_job offsets) and put back together."""
    env = await call_envelope(client, tool, arguments, **kw)
    if not env.get("truncated"):
        return env
    pieces, offset = [env["result"]], env["next_offset"]
    while offset is not None:
        page = await call_envelope(client, "blender_get_job", {"job_id": env["job_id"], "offset": offset})
        pieces.append(page["result"])
        offset = page["next_offset"]
    text = "".join(pieces)
    whole = {k: v for k, v in env.items() if k not in PAGE_FIELDS}
    return {**whole, "result": json.loads(text) if env["result_format"] == "json" else text}


@asynccontextmanager
async def serve_http(
    server: BlendbusServer, *, tokens: dict[str, Any] | None = None, port: int = 0,
    origins: list[str] | None = None, oauth: str | None = None, oauth_user_claim: str = "sub",
    oauth_client: tuple[str, str] | None = None, public_url: str | None = None,
) -> AsyncIterator[str]:
    """Serve `server` over real streamable HTTP on 127.0.0.1, as `blendbus serve` does; yields the /mcp URL.
    `oauth`: an issuer whose access tokens are accepted too (`blendbus serve --oauth`), with
    `oauth_client` (id, secret) to introspect its opaque tokens; or `builtin`, the server signing
    people in itself with the tokens of `tokens`. `public_url`: where clients reach it (default: this
    server's own address), as replicas behind one proxy share one."""
    import asyncio

    import uvicorn

    from ..app import build_app, uvicorn_config
    from ..connections import listening_socket
    from ..auth import TokenTable
    from ..oauth.resource import BUILTIN, builtin_resource, protected_resource

    sock = listening_socket("127.0.0.1", port)
    public = public_url or f"http://127.0.0.1:{sock.getsockname()[1]}"
    table = TokenTable(tokens) if tokens is not None else TokenTable({}) if oauth is not None else None
    if oauth == BUILTIN:
        assert table is not None and server.hub.backend.records is not None
        resource = builtin_resource(public, server.hub.backend.records, table, server.hub.limits)
    else:
        resource = None if oauth is None else protected_resource(
            oauth, public, user_claim=oauth_user_claim, client_id=oauth_client and oauth_client[0],
            client_secret=oauth_client and oauth_client[1])
    app = build_app(server, "127.0.0.1", table, origins=origins, port=sock.getsockname()[1], oauth=resource)
    web = uvicorn.Server(uvicorn_config(app, server.hub.limits, graceful_s=1))
    task = asyncio.ensure_future(web.serve(sockets=[sock]))
    while not web.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        server.shutting_down()
        web.should_exit = True
        await asyncio.wait_for(task, 10)
        await server.hub.stop()
        sock.close()


def start_server(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`blendbus serve` as a process, on a free port; its start-up lines are kept in `proc.said`."""
    # Blender's temporary folders (an embedded Blender this test kills leaves its own) go in tmp_path.
    proc = subprocess.Popen([sys.executable, "-m", "blendbus", "serve", "--port", "0", "--state-dir",
                             str(tmp_path / "state"), *extra], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path), **(env or {})})
    proc.said = []  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        proc.said.append(line)  # type: ignore[attr-defined]
        match = re.search(r"serving (http://\S+/mcp)", line)
        if match:
            proc.said += [proc.stderr.readline() for _ in range(3)]  # type: ignore[attr-defined]
            return proc, match.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("server did not start")
