"""The wire vocabulary shared by the server and every peer.

Both sides import these names from here, so a payload kind or a status is spelled in exactly one
place. The module is stdlib-only on purpose: it ships inside the Blender extension too. It is one
piece on purpose as well: a reader looks up any wire name, on either side, in this one file.
"""

from __future__ import annotations

import binascii
import secrets
from typing import Any, Final

TOOL_PREFIX: Final = "blender_"

# The core's two gates: addon preferences declared by the built-in plugin, read by the peer.
CODE_GATE: Final = "allow_code_execution"
"""Lets LLMs run arbitrary Python in this Blender (blender_execute_code, job_dispatch scripts)."""
ACCEPT_HANDLERS_GATE: Final = "accept_plugin_handlers_from_server"
GATE_ASK: Final = "ask"
"""A gate's third value, besides true and false: ask the person before each gated job runs."""


def gate_state(value: Any) -> str:
    """A gate preference's value as `"open"`, `GATE_ASK` or `"closed"`, however it is stored (True from
    --set, "true" from the add-on's menu)."""
    if value is True or str(value).lower() == "true":
        return "open"
    return GATE_ASK if str(value).lower() == GATE_ASK else "closed"
"""Lets the peer load plugin handler packages the server sends (live sync)."""
OUTPUT_DIR: Final = "output_dir"
"""The peer's output folder: every path an LLM passes must resolve inside it (empty: the default)."""
UNDO_CHECKPOINTS: Final = "undo_checkpoints"
"""How many scene checkpoints a headless peer keeps for blender_undo_job (0: none)."""

# Token roles (the tokens file, `blendbus token new --role`).
ROLES: Final = ("llm", "peer")
"""The roles of a plain `token: user` entry: LLM tools, and peer tools."""
OPERATOR: Final = "operator"
"""Sees every user's bus on the status page, and nothing else (no tool, no MCP method but the open ones)."""
TOKEN_ROLES: Final = (*ROLES, OPERATOR)
"""Every role a tokens file entry may name."""
SCOPE_ROLES: Final = {"blendbus": ROLES[0], "blendbus:peer": ROLES[1], "blendbus:operator": OPERATOR}
"""The OAuth scopes (docs/auth.md) and the role each grants: an OAuth access token plays the roles of its
scopes, as a tokens file entry plays the role it names."""
BASE_SCOPE: Final = "blendbus"
"""The scope an MCP host asks for: the LLM role."""

# The peers' own tools (docs/peer-protocol.md): the server declares them, the add-on calls them.
REGISTER: Final = "blender_register_client"
UNREGISTER: Final = "blender_unregister_client"
POLL: Final = "blender_poll_jobs"
UPDATE: Final = "blender_job_update"
UPDATES: Final = "blender_job_updates"
FETCH_PACKAGE: Final = "blender_fetch_handler_package"
SCENE_CHANGED_TOOL: Final = "blender_scene_changed"
PEER_TOOLS: Final = (REGISTER, UNREGISTER, POLL, UPDATE, UPDATES, FETCH_PACKAGE, SCENE_CHANGED_TOOL)
RESULTS_PATH: Final = "/results"
"""Beside the MCP endpoint (its URL + this): where a peer posts a large reply's result as raw UTF-8 text
instead of inside a `blender_job_update` call, so that neither side encodes it as JSON-RPC (server/uploads.py)."""
UPLOAD_MIN_BYTES: Final = 1024 * 1024
"""A result this large (as JSON) goes to RESULTS_PATH; smaller ones ride on the peer's tool calls."""
STORE_FAILED: Final = "JobStoreError"
"""The `code` of a peer tool's error when the server's store failed (Redis unreachable or failing over, a
full disk), and of an update it answers `persisted: false`: the peer keeps what it sent and sends it
again once it has reconnected, where a refusal (any other code) is dropped."""

# Payload kinds a peer receives from `blender_poll_jobs`.
COMMAND_DISPATCH: Final = "command_dispatch"
JOB_DISPATCH: Final = "job_dispatch"
CANCEL: Final = "cancel"
ANSWER: Final = "answer"
"""The caller's answer to a question a running job asked (`job.ask`): `{job_id, ask_id, action, content}`."""
PAYLOAD_KINDS: Final = (COMMAND_DISPATCH, JOB_DISPATCH)
CONTROL_KINDS: Final = (CANCEL, ANSWER)
"""Payloads about a job already delivered, not a job of their own."""

# Job statuses. Terminal outcomes of a dispatch tool call come first.
COMPLETED: Final = "completed"
FAILED: Final = "failed"
TIMEOUT: Final = "timeout"
NO_CLIENT: Final = "no_client"
AMBIGUOUS_TARGET: Final = "ambiguous_target"
UNKNOWN_TARGET: Final = "unknown_target"
QUEUED: Final = "queued"
RUNNING: Final = "running"
CANCELLED: Final = "cancelled"
LOST: Final = "lost"
"""The target peer vanished (stopped polling, or the server restarted) while the job was in flight."""
BUSY: Final = "busy"
"""Back-pressure: the target peer already has the maximum number of queued jobs."""
INVALID: Final = "invalid"
"""The call never became a job: its arguments failed validation, or the tool is unknown."""
CONFLICT: Final = "conflict"
"""The call named the scene revision it was based on (`expect_revision`), and the scene had moved
since: nothing ran. The envelope carries the current `revision` and what `changes` moved it."""

EXPECT_REVISION: Final = "expect_revision"
"""The argument, and payload field, that makes a scene-changing call conditional on the scene's revision."""
VERIFY: Final = "verify"
"""The argument that adds a picture of the scene after a scene-changing call to its result (verify.py)."""
SCENE_FIELD: Final = "scene"
"""A peer's reply's account of the scene: `{revision, changes?}` (SceneLog.account on the peer)."""
LOG_LEVELS: Final = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
"""MCP's log levels (RFC 5424), least severe first: `job.log(level, message)` on a peer, `logging/setLevel`."""
LEVEL_FIELD: Final = "level"
"""A running update's field that makes its `message` a log line for the caller (one of LOG_LEVELS), not progress."""
MAX_LOG_CHARS: Final = 8192
"""A log line's message is cut to this many characters: logs inform, results carry the data."""
ASK_FIELD: Final = "ask"
"""A running update's field that asks the calling client's user something (`job.ask`):
`{id, message, schema}`, the schema a flat JSON object schema as MCP elicitation takes it; `{id,
message, url}`, a page the user is sent to (URL-mode elicitation, `job.ask_url`); or its model
(`job.sample`): `{id, sample}`, `sample` being MCP `sampling/createMessage` params."""
SAMPLE_KEY: Final = "sample"
ASK_NOTE: Final = "ask"
"""Beside the log levels, the note kind that carries a job's question to its waiting callers, across replicas."""
ASK_ACTIONS: Final = ("accept", "decline", "cancel")
"""How the person answered (MCP elicitation): accepted with content, declined, or dismissed."""
ASK_TIMEOUT_S: Final = 600.0
"""How long a question waits for its answer before the job hears `cancel`. The server keeps it for a
client it asks on the call's stream and as the life of a sealed requestState; the peer keeps it
too, so a job whose caller never comes back (or whose question was lost) still ends."""
UNANSWERED: Final = f"nobody answered within {ASK_TIMEOUT_S:.0f} s"
"""The reason a job hears with that `cancel`."""

DISPATCHED: Final = "dispatch"
"""A bus event: a job was queued on a peer."""
JOB_UPDATE: Final = "job_update"
"""A bus event: a job moved to a new status."""
SCENE_CHANGED: Final = "scene_changed"
"""A bus event: a peer's scene changed (its depsgraph updated), naming the objects that changed."""
SCENE_EVENT_EVERY_S: Final = 0.25
"""A peer reports scene changes at most this often (debounced): a few events per second at most."""
MAX_CHANGED_NAMES: Final = 100
"""Object names one scene-change event carries at most (beyond them, resources are updated as a whole)."""

OPEN_STATUSES: Final = (QUEUED, RUNNING)
"""A job in flight: never pruned, failed as `lost` when its peer goes."""
ROUTING_STATUSES: Final = frozenset({NO_CLIENT, AMBIGUOUS_TARGET, UNKNOWN_TARGET, BUSY, INVALID})

# A job's status only moves to a higher rank. `timeout`, `lost` and `cancelled` rank below the
# peer's own verdict so that a late reply still records the work the peer really did.
STATUS_RANK: Final[dict[str, int]] = {
    QUEUED: 0,
    RUNNING: 1,
    TIMEOUT: 2,
    LOST: 2,
    CANCELLED: 2,
    COMPLETED: 3,
    FAILED: 3,
    CONFLICT: 3,
}
PEER_REPLY_STATUSES: Final = frozenset({RUNNING, COMPLETED, FAILED, CANCELLED, CONFLICT})

POLL_WAIT_S: Final = 300.0
"""How long a peer's poll is held open when nothing is queued. Long, because an idle peer then costs
the server one request per five minutes; the open stream's keep-alive pings, and its closing when
the peer goes away, tell the server whether the peer is still there."""
FINAL_STATUSES: Final = frozenset(STATUS_RANK) - frozenset(OPEN_STATUSES)
"""Every status a job ends in (completed, failed, cancelled, lost, timeout): whatever waits on a job
stops waiting at any of them. Only the peer's own verdict (completed, failed, conflict) can still follow one."""


def new_job_id() -> str:
    """A server-chosen job id: 128 random bits, so that as an MCP task id it cannot be guessed."""
    return "j-" + secrets.token_hex(16)


def command_dispatch(job_id: str, command: str, params: dict[str, Any],
                     expect_revision: int | None = None) -> dict[str, Any]:
    """The payload a peer receives for a plugin command; with `expect_revision`, the peer runs it only
    while its scene is still at that revision (else it answers CONFLICT)."""
    payload = {"message_type": COMMAND_DISPATCH, "job_id": job_id, "command": command, "params": params}
    if expect_revision is not None:
        payload[EXPECT_REVISION] = expect_revision
    return payload


def job_dispatch(job_id: str, script: str) -> dict[str, Any]:
    """The payload a peer receives for a raw script (`blender_send_message`)."""
    return {"message_type": JOB_DISPATCH, "job_id": job_id, "script": script}


def cancel(job_id: str) -> dict[str, Any]:
    """Tells a peer to drop a queued job, or to flag a running one as cancelled."""
    return {"message_type": CANCEL, "job_id": job_id}


def answer(job_id: str, ask_id: str, action: str, content: dict[str, Any] | None = None,
           reason: str = "") -> dict[str, Any]:
    """Brings a running job the answer to its question `ask_id`; `reason` says why nobody could answer."""
    return {"message_type": ANSWER, "job_id": job_id, "ask_id": ask_id, "action": action, "content": content,
            "reason": reason}


def envelope(
    status: str,
    *,
    command: str = "",
    target_uuid: str | None = None,
    job_id: str | None = None,
    result: Any = None,
    error: str = "",
) -> dict[str, Any]:
    """The tool result every dispatch tool returns (SPEC §3)."""
    return {
        "status": status,
        "command": command,
        "target_uuid": target_uuid,
        "job_id": job_id,
        "result": result,
        "error": error,
    }


ENVELOPE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "status": {
            "type": "string",
            "enum": sorted({*STATUS_RANK, *ROUTING_STATUSES}),
            "description": "completed when the peer's handler returned; anything else is an error.",
        },
        "command": {"type": "string"},
        "target_uuid": {"type": ["string", "null"], "description": "The peer that ran (or would run) the job."},
        "job_id": {"type": ["string", "null"], "description": "Pass to blender_get_job to fetch it later."},
        "result": {"description": "The handler's return value, decoded; a page of its text when truncated."},
        "error": {"type": "string"},
        "truncated": {"type": "boolean", "description": "result is one page of a larger result text."},
        "result_bytes": {"type": "integer", "description": "Size of the whole result text, in UTF-8 bytes."},
        "result_format": {"type": "string", "enum": ["text", "json"],
                          "description": "The pages join into text (a script's stdout) or into the result's JSON."},
        "offset": {"type": "integer"},
        "next_offset": {"type": ["integer", "null"],
                        "description": "Pass to blender_get_job(job_id, offset=...) for the next page; null at the end."},
        "revision": {"type": "integer", "description": "The peer's scene revision after the call (before it, on a conflict)."},
        "changes": {"type": "object", "description": "What moved the scene: objects added, removed and modified."},
    },
    "required": ["status", "command", "target_uuid", "job_id", "result", "error"],
}


IMAGES_KEY: Final = "_images"
"""A handler result's images, sent to the LLM as MCP image content: [{data, mime_type}]. The image-only
spelling of CONTENT_KEY, read the same way."""
CONTENT_KEY: Final = "_content"
"""A handler result's MCP content besides its JSON, in order (docs/plugins/results.md): each block is
{type: "image" | "audio", data (base64), mime_type}, {type: "resource", uri, mime_type?, text | blob
(base64)} (an embedded resource) or {type: "resource_link", uri, name, mime_type?, description?}.
The blocks go to the client as content; the structured result keeps the rest."""
CONTENT_KEYS: Final = (IMAGES_KEY, CONTENT_KEY)
IMAGE_MIME_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
CONTENT_TYPES: Final = ("image", "audio", "resource", "resource_link")
MAX_CONTENT_BLOCKS: Final = 64


def content_blocks(result: Any) -> list[dict[str, Any]]:
    """A result's content blocks, `_images` first (as image blocks), then `_content`; [] if it has none."""
    if not isinstance(result, dict):
        return []
    images = result.get(IMAGES_KEY)
    blocks = [{"type": "image", **image} for image in images] if isinstance(images, list) else []
    more = result.get(CONTENT_KEY)
    return blocks + (list(more) if isinstance(more, list) else [])


def without_content(result: Any) -> Any:
    """A result as its structured content: without the blocks that travel as content."""
    if not isinstance(result, dict) or not any(key in result for key in CONTENT_KEYS):
        return result
    return {k: v for k, v in result.items() if k not in CONTENT_KEYS}


def content_problem(result: Any) -> str | None:
    """Why a result's content blocks cannot be shown (None if they can, or if it has none). Checked before
    a peer's reply is stored, so a bad one fails its job instead of breaking every later read."""
    if not isinstance(result, dict):
        return None
    for key in CONTENT_KEYS:
        if key in result and not isinstance(result[key], list):
            return f"{key} must be a list of content blocks"
    blocks = content_blocks(result)
    if len(blocks) > MAX_CONTENT_BLOCKS:
        return f"{len(blocks)} content blocks; at most {MAX_CONTENT_BLOCKS}"
    for i, block in enumerate(blocks):
        problem = _block_problem(block)
        if problem is not None:
            where = f"{IMAGES_KEY}[{i}]" if i < len(result.get(IMAGES_KEY) or []) else \
                f"{CONTENT_KEY}[{i - len(result.get(IMAGES_KEY) or [])}]"
            return f"{where} {problem}"
    return None


def _block_problem(block: Any) -> str | None:
    if not isinstance(block, dict) or block.get("type") not in CONTENT_TYPES:
        return f"needs a type, one of {', '.join(CONTENT_TYPES)}"
    kind = block["type"]
    if kind in ("image", "audio"):
        mime = block.get("mime_type", "image/png" if kind == "image" else "")
        if kind == "image" and mime not in IMAGE_MIME_TYPES:
            return f"has mime_type {str(mime)[:40]!r}; use one of {sorted(IMAGE_MIME_TYPES)}"
        if kind == "audio" and not str(mime).startswith("audio/"):
            return f"has mime_type {str(mime)[:40]!r}; an audio block needs an audio/* mime_type"
        return None if _base64(block.get("data")) else "needs a base64 'data' string"
    if not isinstance(block.get("uri"), str) or "://" not in block["uri"]:
        return "needs a 'uri' such as blender://scene/object/Cube"
    if kind == "resource_link":
        return None if isinstance(block.get("name"), str) else "needs a 'name'"
    if isinstance(block.get("text"), str):
        return None
    return None if _base64(block.get("blob")) else "needs a 'text' string or a base64 'blob'"


def _base64(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return True


def ack_key(payload: dict[str, Any]) -> str:
    """The id a peer acknowledges a delivered payload by (a cancel or an answer is keyed apart from its job)."""
    job_id, kind = str(payload.get("job_id", "")), payload.get("message_type")
    if kind == ANSWER:
        return f"answer:{job_id}:{payload.get('ask_id', '')}"
    return "cancel:" + job_id if kind == CANCEL else job_id
