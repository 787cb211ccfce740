"""The built-in tools: the peer side of the bus (register, poll, reply) and the LLM's own
(list peers, fetch, cancel and send jobs, watch the bus). Plugin tools are built by `tools.py` from
their Commands; these are the ones the core itself answers, each with the token role that may call
it. One table on purpose: each tool's schema, role and handler sit side by side, as a client lists
them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jsonschema

from .. import paging
from .. import protocol as p
from ..auth import ROLES
from ..dispatch import Hub, PeerAuthError
from ..peer_side import LOCAL_CREDENTIAL
from ..plugins import BUILTIN, PluginSet
from ..sync import HandlerPackages
from ..toolsets import EVERYTHING, Toolset
from ..validation import validation_message
from ..waiter import ProgressFn
from ..waits import TooManyWaits, Waits, while_present

LLM, PEER = ROLES
T = TypeVar("T")
WAITS = "long waits"
"""The kind of wait `blender_get_job(wait_s)`, `blender_watch_bus(wait_s)` and `tasks/result` hold."""


@dataclass
class Call:
    """Who is calling, and how to report progress back to them."""

    user_id: str
    progress: ProgressFn | None = None
    """Tells the caller how a job it waits for goes: progress, and the job's log lines (logs.CallerNews)."""
    credential: str = LOCAL_CREDENTIAL
    """The caller's token digest (auth.CREDENTIAL_SCOPE_KEY)."""
    gone: asyncio.Event | None = None
    """Set when the caller's HTTP client disconnects (waits.gone_event): its long waits end then."""
    toolset: Toolset = EVERYTHING
    """The tools the caller may call (toolsets.py): a raw command payload is held to it too."""


ToolFn = Callable[[Call, dict[str, Any]], Awaitable[Any]]


@dataclass
class Tool:
    """A built-in tool: schema, handler, and whether its result is a job envelope."""

    name: str
    description: str
    schema: dict[str, Any]
    fn: ToolFn
    annotations: dict[str, bool] = field(default_factory=dict)
    envelope: bool = False
    role: str = LLM
    """The token role that may call it: peer tools are `peer`, everything else `llm`."""
    ok: frozenset[str] = frozenset({p.COMPLETED})
    """For envelope tools: the statuses that are not an error."""
    max_bytes: int | None = None
    """Cap on the JSON-encoded arguments; None: `Limits.max_arguments_bytes` for llm tools, and for peer
    tools only the HTTP body limit (their replies carry results up to the result cap)."""
    plugin: str | None = None
    """The plugin whose profile item selects it (toolsets.py); None: the bus's own, in every profile."""


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_STR = {"type": "string"}
_PEER = {
    "client_uuid": {"type": "string", "minLength": 1, "maxLength": 200, "description": "The peer's uuid."},
    "peer_token": {"type": "string", "description": "The token blender_register_client returned."},
}
_UPDATE = {
    "job_id": {"type": "string", "minLength": 1},
    "status": {"type": "string", "enum": sorted(p.PEER_REPLY_STATUSES)},
    "result": {},
    "error": {"type": "string"},
    "progress": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    "message": {"type": ["string", "null"]},
    p.LEVEL_FIELD: {"type": "string", "enum": list(p.LOG_LEVELS),
                    "description": "With status running: `message` is a log line for the job's callers, not progress."},
    p.ASK_FIELD: {"type": "object", "required": ["id"], "additionalProperties": False,
                  "description": "With status running: a question for the person behind the job's callers (job.ask:"
                                 " message and schema), or for their model (job.sample: sample).",
                  "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 64},
                                 "message": {"type": "string", "maxLength": p.MAX_LOG_CHARS},
                                 "schema": {"type": "object", "maxProperties": 8},
                                 "url": {"type": "string", "pattern": "^https?://", "maxLength": 2048},
                                 p.SAMPLE_KEY: {"type": "object", "required": ["messages", "maxTokens"],
                                                "maxProperties": 12}},
                  "oneOf": [{"required": ["message", "schema"]}, {"required": ["message", "url"]},
                            {"required": [p.SAMPLE_KEY]}]},
    # Bounded, not picky: a reply the server refused would be posted again and again.
    p.SCENE_FIELD: {"type": "object", "maxProperties": 4, "properties": {
        "revision": {"type": "integer"},
        "changes": {"type": "object", "maxProperties": 8, "additionalProperties": {
            "anyOf": [{"type": "array", "maxItems": p.MAX_CHANGED_NAMES, "items": {"type": "string", "maxLength": 255}},
                      {"type": ["integer", "boolean"]}]}},
    }, "description": "The peer's scene revision after the job (before it, on a conflict), and what changed."},
}
_UPDATES = {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"type": "object", "maxProperties": 20},
            "description": "Job updates, each checked and answered on its own (see blender_job_update)."}
_ONE_UPDATE = jsonschema.Draft202012Validator(_obj(_UPDATE, ("job_id", "status")))
"""Each update of a batch is checked alone: one the server cannot take is answered with why, and the
rest still land (a batch refused whole would be posted again and again)."""


class BuiltinTools:
    """The built-in tools of one server, over its Hub."""

    def __init__(self, hub: Hub, plugins: PluginSet, packages: HandlerPackages,
                 validate: Callable[[str, dict[str, Any]], str | None], waits: Waits) -> None:
        self.hub, self.plugins, self.packages, self.validate, self.waits = hub, plugins, packages, validate, waits

    async def held(self, call: Call, waiting: Callable[[], Awaitable[T]]) -> T:
        """A long wait of the caller's: counted against its cap, ended if the caller leaves."""
        with self.waits.hold(call.user_id, WAITS, self.hub.limits.max_waits_per_user):
            return await while_present(call.gone, waiting())

    def tools(self) -> list[Tool]:
        """Every built-in tool, with its schema, role and handler."""
        lim = self.hub.limits
        return [
            Tool(p.REGISTER, "Peer side: join this user's bus as a Blender peer. Returns the"
                 " peer_token and the command table the peer runs.", _obj({
                     "client_uuid": _PEER["client_uuid"],
                     "client_type": {"type": "string", "default": "blender", "maxLength": 100},
                     "is_persistent": {"type": "boolean", "default": False},
                     "capabilities": {"type": "object", "maxProperties": 100},
                     "blender_version": {"type": "string", "maxLength": 100},
                     "handlers": {"type": "array", "items": {"type": "object", "maxProperties": 20}, "maxItems": 500,
                                  "description": "Handler packages the peer has: [{package, version, sha256}]."},
                     "gates": {"type": "object", "maxProperties": 1000, "additionalProperties": {
                         "anyOf": [{"type": "boolean"}, {"const": p.GATE_ASK}]}},
                     "instance": {"type": "string", "maxLength": 100,
                                  "description": "Random per peer process; a new value fails the old one's jobs."},
                 }, ("client_uuid",)),
                 self._register, {"idempotent": True}, role=PEER, max_bytes=lim.max_registration_bytes),
            Tool(p.UNREGISTER, "Peer side: leave the bus.", _obj(_PEER, ("client_uuid", "peer_token")),
                 self._unregister, role=PEER),
            Tool(p.FETCH_PACKAGE, "Peer side: the source of one plugin's addon-side package,"
                 " for a peer that lacks it or has another version (live handler sync).",
                 _obj({**_PEER, "package": {"type": "string", "maxLength": 200}},
                      ("client_uuid", "peer_token", "package")), self._fetch_package, {"read_only": True}, role=PEER),
            Tool(p.SCENE_CHANGED_TOOL, "Peer side: the peer's scene changed (debounced depsgraph updates);"
                 " resource subscribers are notified.", _obj({
                     **_PEER,
                     "objects": {"type": "array", "items": {"type": "string", "maxLength": 255},
                                 "maxItems": p.MAX_CHANGED_NAMES, "description": "Names of the objects that changed."},
                     "all": {"type": "boolean", "description": "More objects changed than can be named."},
                 }, ("client_uuid", "peer_token")), self._scene_changed, role=PEER),
            Tool("blender_list_clients", "List the Blender peers connected to your bus.", _obj({}),
                 self._list_clients, {"read_only": True}),
            Tool(p.POLL, "Peer side: long-poll for payloads. Acknowledge what the previous poll"
                 " returned in `ack`; unacknowledged payloads are handed out again.", _obj({
                     **_PEER,
                     "ack": {"type": "array", "items": _STR, "maxItems": 10000},
                     "wait_s": {"type": "number", "minimum": 0, "maximum": lim.poll_wait_s},
                     "replies": _UPDATES,
                 }, ("client_uuid", "peer_token")), self._poll, role=PEER),
            Tool(p.UPDATE, "Peer side: report progress or the outcome of a job sent to this peer.",
                 _obj({**_PEER, **_UPDATE}, ("job_id", "status", "client_uuid", "peer_token")), self._job_update,
                 role=PEER),
            Tool(p.UPDATES, "Peer side: several job updates in one request (what accumulated while"
                 " the previous one was in flight); each is answered on its own.", _obj({
                     **_PEER,
                     "updates": _UPDATES,
                 }, ("client_uuid", "peer_token", "updates")), self._job_updates, role=PEER),
            Tool("blender_get_job", "A job's status and result (a timed-out job keeps running); wait_s waits for it"
                 " to end. A paged result (truncated): pass offset=next_offset.",
                 _obj({
                     "job_id": {"type": "string", "minLength": 1},
                     "wait_s": {"type": "number", "minimum": 0, "maximum": lim.max_wait_s},
                     "offset": {"type": "integer", "minimum": 0,
                                "description": "Byte offset of the page in the result's text."},
                     "length": {"type": "integer", "minimum": paging.MIN_PAGE_BYTES,
                                **({"maximum": max(lim.inline_result_max_bytes, paging.MAX_PAGE_BYTES)}
                                   if lim.inline_result_max_bytes else {}),
                                "description": "Bytes per page (default: the server's)."},
                 }, ("job_id",)), self._get_job, {"read_only": True}, envelope=True),
            Tool("blender_cancel_job", "Stop a job: a queued one never runs, a running one stops at its next Python"
                 " line. Its status becomes 'cancelled'.", _obj({"job_id": {"type": "string", "minLength": 1}}, ("job_id",)),
                 self._cancel_job, {"destructive": False, "idempotent": True}, envelope=True,
                 ok=frozenset({p.CANCELLED})),
            Tool("blender_send_message", "Escape hatch: send a raw payload. job_dispatch {script} runs a script and"
                 " returns its stdout; command_dispatch {command, params} runs a command. wait: false returns at once"
                 " (status 'queued'); blender_get_job(job_id) fetches the reply.", _obj({
                     "payload": {"type": "object", "properties": {
                         "message_type": {"type": "string", "enum": list(p.PAYLOAD_KINDS)},
                         "job_id": {"type": "string", "minLength": 1, "maxLength": 200},
                         "script": {"type": "string"},
                         "command": {"type": "string"},
                         "params": {"type": "object"},
                     }, "required": ["message_type"]},
                     "target_uuid": _STR,
                     "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": lim.max_timeout_s},
                     "wait": {"type": "boolean", "default": True},
                 }, ("payload",)), self._send_message, {"destructive": True}, envelope=True,
                 ok=frozenset({p.COMPLETED, p.QUEUED}), plugin=BUILTIN),
            Tool("blender_watch_bus", "Your bus's events after `cursor`,"
                 " waiting up to wait_s for the first.", _obj({
                     "cursor": {"type": "integer", "minimum": 0},
                     "wait_s": {"type": "number", "minimum": 0, "maximum": lim.max_wait_s},
                 }), self._watch_bus, {"read_only": True}),
        ]

    async def _register(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        peer = await self.hub.register_peer(
            call.user_id, a["client_uuid"], call.credential,
            client_type=a.get("client_type"), is_persistent=a.get("is_persistent"),
            capabilities=a.get("capabilities"), blender_version=a.get("blender_version"),
            handlers=a.get("handlers"), gates=a.get("gates"), instance=a.get("instance"),
        )
        return {
            "client_uuid": peer.uuid,
            "peer_token": peer.token,
            "commands": [c.wire() for c in self.plugins.commands.values()],
            "preferences": [pref.wire() for pref in self.plugins.preferences.values()],
            "packages": self.packages.manifest(),
            "poll_wait_s": self.hub.limits.poll_wait_s,
            "peer_grace_s": self.hub.limits.peer_grace_s,
            "max_result_bytes": self.hub.limits.max_result_bytes,
            "accepts": [p.SCENE_FIELD],
        }

    async def _fetch_package(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        source = self.packages.source(a["package"])
        entry = {k: source[k] for k in ("package", "plugin", "version", "sha256")}
        await self.hub.note_synced(call.user_id, a["client_uuid"], a["peer_token"], {**entry, "source": "synced"})
        return source

    async def _scene_changed(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        await self.hub.scene_changed(call.user_id, a["client_uuid"], a["peer_token"], a.get("objects", []),
                                     a.get("all", False))
        return {"accepted": True}

    async def _unregister(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        await self.hub.unregister_peer(call.user_id, a["client_uuid"], a["peer_token"])
        return {"unregistered": a["client_uuid"]}

    async def _list_clients(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        return {"clients": await self.hub.list_peers(call.user_id)}

    async def _poll(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        """Replies carried on the poll are applied first (so their callers are answered), then it waits."""
        answers = await self._job_updates(call, {**a, "updates": a["replies"]}) if a.get("replies") else None
        payloads = await self.hub.poll(
            call.user_id, a["client_uuid"], a["peer_token"], a.get("ack", []),
            a.get("wait_s", self.hub.limits.poll_wait_s),
        )
        return {"payloads": payloads, **(answers or {})}

    async def _job_update(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        return await _apply(self.hub, call.user_id, a["client_uuid"], a["peer_token"], a)

    async def _job_updates(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        if not a["updates"]:
            await self.hub.peer(call.user_id, a["client_uuid"], a["peer_token"])
        return {"answers": [await apply_update(self.hub, call.user_id, a["client_uuid"], a["peer_token"], update)
                            for update in a["updates"]]}

    async def _get_job(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        wait_s, page = a.get("wait_s", 0.0), None
        if "offset" in a:
            budget = self.hub.limits.inline_result_max_bytes or paging.DEFAULT_INLINE_RESULT_MAX_BYTES
            page = (a["offset"], a.get("length", budget))
        try:
            return (await self.held(call, lambda: self.hub.get_job(call.user_id, a["job_id"], wait_s, page=page))
                    if wait_s > 0 else await self.hub.get_job(call.user_id, a["job_id"], page=page))
        except TooManyWaits as exc:
            return p.envelope(p.BUSY, job_id=a["job_id"], error=str(exc))

    async def _cancel_job(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        return await self.hub.cancel_job(call.user_id, a["job_id"])

    async def _send_message(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        raw = a["payload"]
        kind = raw["message_type"]
        job_id = raw.get("job_id") or p.new_job_id()
        if kind == p.JOB_DISPATCH:
            if not isinstance(raw.get("script"), str):
                raise ValueError("a job_dispatch payload needs a 'script' string")
            payload, command = p.job_dispatch(job_id, raw["script"]), "job_dispatch"
            timeout = 60.0
        else:
            cmd = self.plugins.commands.get(raw.get("command", ""))
            if cmd is None:
                raise ValueError(f"unknown command {raw.get('command')!r} in command_dispatch payload")
            if not call.toolset.admits(cmd.tool_name):
                raise PermissionError(f"{cmd.tool_name} is not in your tools profile")
            params = raw.get("params") or {}
            error = self.validate(cmd.tool_name, params)
            if error:
                return p.envelope(p.INVALID, command=cmd.name, job_id=job_id, error=error)
            payload, command, timeout = p.command_dispatch(job_id, cmd.name, params), cmd.name, cmd.timeout
        return await self.hub.dispatch(
            call.user_id, payload, command=command, target_uuid=a.get("target_uuid"),
            timeout=a.get("timeout_s", timeout), on_progress=call.progress, wait=a.get("wait", True),
        )

    async def _watch_bus(self, call: Call, a: dict[str, Any]) -> dict[str, Any]:
        cursor, wait_s = a.get("cursor", 0), a.get("wait_s", 0.0)
        events, cursor = (await self.held(call, lambda: self.hub.peers.events_since(call.user_id, cursor, wait_s))
                          if wait_s > 0 else await self.hub.peers.events_since(call.user_id, cursor, 0.0))
        return {"logger": "_message_bus", "cursor": cursor,
                "events": [{"seq": e.seq, "kind": e.kind, **e.data} for e in events]}


async def apply_update(hub: Hub, user_id: str, client_uuid: str, peer_token: str, update: dict[str, Any]
                       ) -> dict[str, Any]:
    """One update of a peer's, checked on its own: its answer, or why it was refused. A bad token
    raises PeerAuthError instead (the peer re-registers and sends it again); so does a failed store."""
    errors = sorted(_ONE_UPDATE.iter_errors(update), key=lambda e: list(e.absolute_path))
    if errors:
        return {"job_id": str(update.get("job_id"))[:200], "code": p.INVALID, "error": validation_message(p.UPDATE, errors)}
    try:
        return {"job_id": update["job_id"], **await _apply(hub, user_id, client_uuid, peer_token, update)}
    except PeerAuthError:
        raise  # a bad token fails the whole batch (each reply checks it: no read of its own)
    except (PermissionError, LookupError, ValueError) as exc:
        return {"job_id": update["job_id"], "error": str(exc), "code": type(exc).__name__}


async def _apply(hub: Hub, user_id: str, client_uuid: str, peer_token: str, u: dict[str, Any]) -> dict[str, Any]:
    return await hub.job_update(
        user_id, client_uuid, peer_token, u["job_id"], u["status"],
        result=u.get("result"), error=u.get("error", ""), progress=u.get("progress"), message=u.get("message"),
        scene=u.get(p.SCENE_FIELD), level=u.get(p.LEVEL_FIELD), ask=u.get(p.ASK_FIELD),
    )
