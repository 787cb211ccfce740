"""How a job's question reaches a 2026-07-28 client: multi round-trip requests (SEP-2322).

That revision has no server-to-client request on a call's stream. Instead, when the job asks
(`job.ask`), `tools/call` answers `input_required` with the question as an `elicitation/create`
input request and a `requestState`; the job keeps running on its peer, waiting. The client asks its
user and sends the same `tools/call` again with the answer (`inputResponses`) and the state; this
call brings the answer to the job and waits for it again, as its caller, until it ends or asks
again. The retry may land on any replica.

`requestState` comes back from the client, so it is sealed: the SDK's `RequestStateBoundary`
encrypts and authenticates it (AES-GCM), binds it to the caller (user and credential) and to a
lifetime, and refuses a tampered or foreign one (-32602) before any handler runs. Its key is made
once per backend and kept in `Records`, so every replica opens what another sealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from typing import Any

import mcp_types as types
from mcp.server.request_state import (
    AESGCMRequestStateCodec,
    InvalidRequestState,
    RequestStateBoundary,
    RequestStateSecurity,
)

from ..backends.base import Records
from ..command import Command
from ..dispatch import Detached
from ..protocol import ASK_TIMEOUT_S
from ..questions import input_request
from .builtin_tools import Call
from .calls import Calls, credential_of, identity_of

KEY = ("key", "request-state")
"""The `Records` kind and key of the sealing key."""


class SharedKey:
    """The SDK's AES-GCM codec over a key every replica shares; loaded before the first seal or unseal
    (`load`), since a codec cannot wait for the store."""

    def __init__(self, records: Records | None) -> None:
        self.records = records
        self._codec: AESGCMRequestStateCodec | None = None

    async def load(self) -> None:
        if self._codec is None:
            key = secrets.token_hex(32)
            if self.records is not None:
                key = (await self.records.put_first(*KEY, {"key": key}))["key"]
            self._codec = AESGCMRequestStateCodec([bytes.fromhex(key)])

    def seal(self, payload: bytes) -> str:
        if self._codec is None:
            raise RuntimeError("the request-state key was not loaded before a seal")
        return self._codec.seal(payload)

    def unseal(self, token: str) -> bytes:
        if self._codec is None:
            raise InvalidRequestState("key not loaded")
        return self._codec.unseal(token)


class Rounds:
    """Runs a 2026-07-28 client's command call round by round."""

    def __init__(self, calls: Calls, records: Records | None) -> None:
        self.calls, self.key = calls, SharedKey(records)

    def middleware(self) -> list[Any]:
        """The server middleware: the key is loaded, then the SDK's boundary seals and unseals."""

        async def load_key(ctx: Any, call_next: Any) -> Any:
            if ctx.method == "tools/call":
                await self.key.load()
            return await call_next(ctx)

        security = RequestStateSecurity(codec=self.key, ttl=ASK_TIMEOUT_S, bind_principal=self._principal)
        return [load_key, RequestStateBoundary(security, default_audience="blendbus")]

    def _principal(self, ctx: Any) -> str | None:
        user, _ = identity_of(ctx)
        return f"{user}\n{credential_of(ctx)}"

    async def call(self, ctx: Any, call: Call, cmd: Command, arguments: dict[str, Any],
                   params: types.CallToolRequestParams) -> dict[str, Any] | types.InputRequiredResult:
        """The job's envelope, or the question it asked, for the client to answer and call again. A
        question the client cannot take (it did not declare the capability) is never sent: the job
        hears `cancel`, and why."""
        asked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        questions = self.calls.questions
        call.progress.ask = questions.detach_on(ctx, call.user_id, asked)  # type: ignore[attr-defined]
        hub = self.calls.hub
        if params.request_state is None:
            deadline = time.time() + float(arguments.get("timeout_s", cmd.timeout))
            work = asyncio.ensure_future(self.calls.run(call, cmd, arguments, detach=asked))
        else:
            state = json.loads(params.request_state)
            deadline = float(state["deadline"])
            response = (params.input_responses or {}).get(state["ask"])

            async def bring_answer() -> None:
                await questions.respond(call.user_id, {"job_id": state["job"], "id": state["ask"]}, response)

            work = asyncio.ensure_future(hub.follow(call.user_id, state["job"], max(1.0, deadline - time.time()),
                                                    call.progress, detach=asked, before=bring_answer))
        try:
            await asyncio.wait({work, asked}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the client gave up: so does the job, as for any cancelled call
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            if params.request_state is not None:
                with contextlib.suppress(LookupError, ValueError):
                    await asyncio.shield(hub.cancel_job(call.user_id, json.loads(params.request_state)["job"]))
            raise
        try:
            return await work  # its end, when it came first (or with the question)
        except Detached:
            pass
        question = asked.result()
        return types.InputRequiredResult(
            input_requests={question["id"]: input_request(question)},
            request_state=json.dumps({"job": question["job_id"], "ask": question["id"], "deadline": deadline}))
