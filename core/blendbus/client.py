"""Connecting to a blendbus server as an MCP client (the CLI's `call`, and every peer)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx2
import mcp_types
from mcp import Client
from mcp.client.extension import ClientExtension
from mcp.client.streamable_http import streamable_http_client

from . import protocol as p


class ConnectError(ConnectionError):
    """A server could not be used; the message says why and what to do. `status` is the HTTP status
    the server answered with, if it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


HTTP_MISTAKES = {
    401: "the server refused the token (HTTP 401): pass the right one with --token or BLENDBUS_TOKEN"
         " (`blendbus token new USER` makes one on the server's machine)",
    403: "the server refused this request's Origin (HTTP 403): a browser origin must be listed in the"
         " server's --allowed-origins",
    404: "nothing serves MCP at {url} (HTTP 404): the URL ends in /mcp, such as http://127.0.0.1:8765/mcp",
    405: "nothing serves MCP at {url} (HTTP 405; the status page lives at /): the URL ends in /mcp, such as"
         " http://127.0.0.1:8765/mcp",
    421: "the server refused the host name in {url} (HTTP 421): connect by a name it allows, or add this one"
         " with the server's --allowed-hosts",
}


def explain(url: str, status: int | None, exc: BaseException) -> str:
    """What went wrong connecting to `url`, in words a user can act on."""
    if status in HTTP_MISTAKES:
        return HTTP_MISTAKES[status].format(url=url)
    cause = describe_error(exc)
    if status is not None:
        return f"{url} answered HTTP {status}: {cause}"
    if "ConnectError" in cause or "Connection refused" in cause or "ConnectTimeout" in cause:
        return (f"nothing answers at {url} ({cause}): start `blendbus serve` there, or name the server that runs:"
                " --server URL or the BLENDBUS_SERVER variable (in Blender: the add-on's Server URL)")
    return f"cannot use {url}: {cause}"


_PREFERRED: dict[str, int] = {}
"""A server list -> the index of the URL that answered last: reconnects try it first."""


def server_urls(spec: str) -> list[str]:
    """`URL1,URL2,...` (replicas of one service) as a list; a single URL is a list of one."""
    urls = [u.strip() for u in spec.split(",") if u.strip()]
    if not urls:
        raise ConnectError("no server URL given: pass --server http://HOST:PORT/mcp")
    return urls


@asynccontextmanager
async def connect(url: str, token: str | None = None, *, mode: str = "auto",
                  extensions: Sequence[ClientExtension] = (), **options: Any) -> AsyncIterator[Client]:
    """An MCP client on streamable HTTP with a bearer token and no SSE event size limit.

    `url` may list several replicas of one service, comma-separated: an unreachable one is skipped
    for the next, starting from the one that answered last. A server that answers but refuses
    (a wrong token, a wrong path) is not skipped: the next replica would refuse the same way.

    The SDK drops SSE events over 1 MiB by default; blendbus results can be up to 64 MB, so the
    limit is lifted here. Other MCP clients need the same for large results (docs/limits.md).
    Failing to connect raises ConnectError with the reason (a refused token, a wrong URL, ...).
    `extensions` are the MCP extensions the client declares (an MCP Apps host's, for one); `options`
    go to the SDK's `Client` as they are (`logging_callback`, `log_level`, ...).
    """
    urls = server_urls(url)
    first = _PREFERRED.get(url, 0) % len(urls)
    unreachable: list[str] = []
    async with AsyncExitStack() as stack:
        for index in [*range(first, len(urls)), *range(first)]:
            try:
                client = await stack.enter_async_context(_connect_one(urls[index], token, mode=mode,
                                                                      extensions=extensions, options=options))
            except ConnectError as exc:
                if exc.status is not None or len(urls) == 1:
                    raise
                unreachable.append(str(exc))
                continue
            _PREFERRED[url] = index
            yield client
            return
        raise ConnectError("no replica answers: " + "; ".join(unreachable))


@asynccontextmanager
async def _connect_one(url: str, token: str | None, *, mode: str, extensions: Sequence[ClientExtension],
                       options: dict[str, Any]) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    timeout = httpx2.Timeout(30.0, read=300.0)
    refused: list[int] = []

    async def remember(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            refused.append(response.status_code)

    async with httpx2.AsyncClient(headers=headers, timeout=timeout, event_hooks={"response": [remember]}) as http:
        transport = streamable_http_client(url, http_client=http, max_sse_event_size=None)
        async with AsyncExitStack() as stack:
            try:
                client = await stack.enter_async_context(Client(transport, mode=mode, extensions=list(extensions),
                                                                **options))
            except Exception as exc:  # noqa: BLE001 - every failure to connect is explained
                status = refused[-1] if refused else None
                raise ConnectError(explain(url, status, exc), status) from exc
            _HTTP[id(client)] = (http, url)
            try:
                yield client
            finally:
                del _HTTP[id(client)]


_HTTP: dict[int, tuple[httpx2.AsyncClient, str]] = {}
"""Each open HTTP client session's own HTTP client (its token) and URL, by the session's id(), which
`post_result` uses."""
POST_PIECE_BYTES = 1024 * 1024


async def post_result(client: Client, head: dict[str, Any], text: bytes) -> dict[str, Any] | None:
    """Post a large result's text, raw, beside the MCP endpoint that `client` is connected to
    (protocol.RESULTS_PATH; server/uploads.py): the update's answer, as `blender_job_update` gives it.
    None when `client` has no HTTP side (in memory) or its server has no such endpoint (an older one):
    send it as a tool call instead. A refusal raises ToolError, as that call would."""
    known = _HTTP.get(id(client))
    if known is None:
        return None
    http, url = known
    line = json.dumps(head, separators=(",", ":")).encode() + b"\n"

    async def pieces() -> AsyncIterator[bytes]:  # the text is sent as it is held, never copied whole
        yield line
        view = memoryview(text)
        for start in range(0, len(view), POST_PIECE_BYTES):
            yield bytes(view[start:start + POST_PIECE_BYTES])

    target = url.rstrip("/") + p.RESULTS_PATH
    try:
        response = await http.post(target, content=pieces(), headers={
            "content-type": "application/octet-stream", "content-length": str(len(line) + len(text))})
    except httpx2.HTTPError as exc:
        raise ConnectError(f"posting a result to {target} failed: {describe_error(exc)}") from exc
    if response.status_code in (404, 405):
        return None
    try:
        value = response.json()
    except ValueError:
        value = None
    if response.status_code == 200 and isinstance(value, dict):
        return value
    if isinstance(value, dict) and "code" in value:  # the update's refusal, as blender_job_update words it
        raise ToolError(p.UPDATE, value)
    # Refused before the update was looked at (a token, a size, a pace, a busy server): a connection's trouble
    status = response.status_code
    raise ConnectError(explain(url, status, RuntimeError(f"HTTP {status}: {response.text[:200]}")), status)


class ToolError(RuntimeError):
    """A tool call answered with isError; `value` is its structured content."""

    def __init__(self, tool: str, value: Any) -> None:
        self.tool, self.value = tool, value
        msg = value.get("error") if isinstance(value, dict) else value
        super().__init__(f"{tool}: {msg}")

    @property
    def code(self) -> str | None:
        return self.value.get("code") if isinstance(self.value, dict) else None


def structured(result: Any) -> Any:
    """A CallToolResult's structured content (or its JSON text, for servers that send only text)."""
    if result.structured_content is not None:
        return result.structured_content
    for block in result.content:
        if getattr(block, "type", None) == "text":
            try:
                return json.loads(block.text)
            except ValueError:
                return block.text
    return None


async def call(client: Client, tool: str, arguments: dict[str, Any], *, timeout: float | None = None) -> Any:
    """Call a tool and return its structured content; isError raises ToolError.

    blendbus's own callers (peers, the CLI) read the envelope themselves, so this skips the SDK's
    output-schema check: for a tool the caller is not listed (a peer's own tools, hidden from LLM
    clients) that check would fetch tools/list again before every call."""
    request = mcp_types.CallToolRequest(params=mcp_types.CallToolRequestParams(name=tool, arguments=arguments))
    result = await client.session.send_request(request, mcp_types.CallToolResult, request_read_timeout_seconds=timeout)
    value = structured(result)
    if result.is_error:
        raise ToolError(tool, value)
    return value


def root_cause(exc: BaseException) -> BaseException:
    """The exception inside the SDK's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_error(exc: BaseException) -> str:
    """One line naming the real cause, looking inside the SDK's exception groups."""
    exc = root_cause(exc)
    return f"{type(exc).__name__}: {exc}"
