"""A large result posted by its peer outside JSON-RPC: `POST <MCP URL>/results`.

A reply sent as a `blender_job_update` call is a JSON-RPC request: the peer's SDK builds it in its
models, encodes it (and formats it into a debug message), and the server's SDK parses it into models
again, each step a pass over the whole result and a copy of it. Posted here, the result is its text
(`paging.result_text`) as raw UTF-8 after one line of JSON that carries the rest of the update:

    {"client_uuid": ..., "peer_token": ..., "job_id": ..., "status": "completed", "result_format": "text"}\\n
    <the result text>

It is decoded once and taken exactly as the same update sent as a tool call would be
(`builtin_tools.apply_update`): the same checks, the same answer as JSON. The request is bounded as
MCP requests are (`asgi.BodyLimits`: a peer token's size cap, a pace), behind the same bearer
authentication, Host and Origin checks, and needs a token with the peer role."""

from __future__ import annotations

import json
import logging
from typing import Any

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import paging
from .. import protocol as p
from ..asgi import BodyLimits, bounded
from ..auth import ROLES, ROLES_SCOPE_KEY, USER_SCOPE_KEY
from ..backends.base import JobStoreError
from ..dispatch import Hub, PeerAuthError
from ..oauth.resource import MCP_PATH
from .builtin_tools import PEER, apply_update
from .calls import LOCAL_USER

log = logging.getLogger(__name__)
HEAD_MAX_BYTES = 256 * 1024
"""The head line carries ids, a status, an error and a scene account: never this much."""


class Refused(ValueError):
    """The body is not a head line and a result text."""


def parse(body: bytes) -> dict[str, Any]:
    """The update a body carries, its result decoded from its text."""
    end = body.find(b"\n", 0, HEAD_MAX_BYTES)
    if end < 0:
        raise Refused(f"the body must start with a line of JSON (at most {HEAD_MAX_BYTES} bytes) before the result")
    try:
        head = json.loads(body[:end])
    except ValueError as exc:
        raise Refused(f"the head line is not JSON: {exc}") from None
    if not isinstance(head, dict) or "result" in head:
        raise Refused("the head line must be a JSON object without `result` (the result follows it)")
    fmt = head.pop("result_format", paging.TEXT)
    try:
        text = str(memoryview(body)[end + 1:], "utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(f"the result is not UTF-8: {exc}") from None
    if fmt == paging.TEXT:
        return {**head, "result": text}
    if fmt == paging.JSON:
        try:
            return {**head, "result": json.loads(text)}
        except ValueError as exc:
            raise Refused(f"the result is not JSON, as its result_format says: {exc}") from None
    raise Refused(f"result_format must be {paging.TEXT!r} or {paging.JSON!r}, not {fmt!r}")


def upload_route(hub: Hub, security: TransportSecuritySettings, limits: BodyLimits) -> Route:
    """The route, its body read whole within `limits` before the handler runs."""
    guard = TransportSecurityMiddleware(security)

    async def upload(scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        response = await guard.validate_request(request) or await _answer(hub, request)
        await response(scope, receive, send)

    return Route(MCP_PATH + p.RESULTS_PATH, bounded(upload, limits), methods=["POST"])


async def _answer(hub: Hub, request: Request) -> Response:
    if PEER not in request.scope.get(ROLES_SCOPE_KEY, ROLES):
        return JSONResponse({"error": f"posting a result needs a token with the {PEER} role", "code": "Forbidden"},
                            status_code=403)
    try:
        update = parse(await request.body())
        uuid, token = update.pop("client_uuid"), update.pop("peer_token")
        if not isinstance(uuid, str) or not isinstance(token, str):
            raise Refused("client_uuid and peer_token must be strings")
    except KeyError as exc:
        return JSONResponse({"error": f"the head line has no {exc.args[0]}", "code": p.INVALID}, status_code=400)
    except Refused as exc:
        return JSONResponse({"error": str(exc), "code": p.INVALID}, status_code=400)
    try:
        answer = await apply_update(hub, request.scope.get(USER_SCOPE_KEY, LOCAL_USER), uuid, token, update)
    except PeerAuthError as exc:
        return JSONResponse({"error": str(exc), "code": type(exc).__name__}, status_code=403)
    except JobStoreError as exc:
        log.error("%s", exc)  # the peer keeps the result, and posts it again
        return JSONResponse({"error": str(exc), "code": p.STORE_FAILED}, status_code=503)
    return JSONResponse(answer, status_code=400 if "error" in answer else 200)  # refused, with its code
