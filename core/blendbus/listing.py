"""The wire form of each tool: what an LLM reads in `tools/list`, kept lean.

An LLM pays for every listed byte in every conversation, so a listed tool carries what a model needs
to call it well and nothing it could learn once:
- the result envelope is described in the server's instructions, not repeated per tool: a tool
  lists an outputSchema only when its command declared a result model;
- the arguments dispatch tools share (target_uuid, timeout_s, expect_revision) are explained once,
  in the instructions, not listed per tool: a model that needs target_uuid is told so, with the
  candidates, by the `ambiguous_target` answer;
- pydantic's annotations that say nothing to a model (`title`, `default: null` beside an optional
  value) and tool hints that only restate MCP's defaults are left out;
- the guards that protect the server rather than guide the model (minLength, maxLength, maxItems,
  maxProperties, additionalProperties: false) are left out too.
Calls are still validated against the full schema (`Command.input_schema` plus the shared arguments
with their bounds), so a guard a model crosses is refused by name, as it always was.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from . import verify
from .command import Command
from .protocol import EXPECT_REVISION

TOKEN_BYTES = 3.5
"""Bytes of compact JSON per LLM token: the rule of thumb the tool-list budget is counted in."""
TOOL_BUDGET_BYTES = 1400
"""The most one bundled tool may cost in the list (compact JSON of its whole definition): a test holds
every bundled tool to it, so a description or schema that grows past it fails in review, not in use."""

_NULL = {"type": "null"}
_UNLISTED = frozenset({"title", "minLength", "maxLength", "maxItems", "maxProperties"})
"""Schema keywords a model is not shown: annotations that tell it nothing, and the server's guards."""
_HINT_DEFAULTS = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False, "openWorldHint": True}
"""MCP's own defaults for tool annotations: a hint equal to its default says nothing."""


def dispatch_schema(cmd: Command, max_timeout_s: float) -> dict[str, Any]:
    """A command tool's full input schema: its own params plus the arguments every dispatch tool
    takes (command.RESERVED_ARGUMENTS). Calls are validated against this one."""
    schema = json.loads(json.dumps(cmd.input_schema))
    schema["properties"]["target_uuid"] = {"type": "string"}
    schema["properties"]["timeout_s"] = {"type": "number", "exclusiveMinimum": 0, "maximum": max_timeout_s}
    if not cmd.scene_neutral:
        schema["properties"][EXPECT_REVISION] = {"type": "integer", "minimum": 0}
        schema["properties"][verify.ARGUMENT] = {"type": "boolean"}
    return schema


def listed_input_schema(cmd: Command) -> dict[str, Any]:
    """A command tool's inputSchema as listed: its own params, lean. The server's instructions say
    once that every tool also takes target_uuid and timeout_s, and every scene-changing one
    expect_revision. A keyword the author wrote in a JSON-schema `params` on purpose (`additionalProperties`)
    is listed as written, though the lean form leaves out the server's own default."""
    listed = lean(json.loads(json.dumps(cmd.input_schema)))
    if isinstance(cmd.params, dict) and "additionalProperties" in cmd.params:
        listed["additionalProperties"] = cmd.params["additionalProperties"]
    return listed


def lean(schema: Any) -> Any:
    """`schema` as listed: without annotation-only keywords, and with `anyOf: [X, null]` plus
    `default: null` (pydantic's spelling of an optional value) as plain X. Property names are data,
    never keywords, so a property called `title` stays."""
    if isinstance(schema, list):
        return [lean(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if (key in _UNLISTED and isinstance(value, str | int)) or (key == "additionalProperties" and value is False):
            continue
        if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
            out[key] = {name: lean(sub) for name, sub in value.items()}
        else:
            out[key] = lean(value)
    options = out.get("anyOf")
    if (isinstance(options, list) and len(options) == 2 and _NULL in options and "default" in out
            and out["default"] is None):
        (kept,) = [o for o in options if o != _NULL]
        del out["anyOf"], out["default"]
        out = {**kept, **out}
    return out


def annotations(hints: dict[str, bool]) -> types.ToolAnnotations | None:
    """A tool's MCP annotations (already in their wire names), without those that restate MCP's defaults."""
    said = {k: v for k, v in hints.items() if _HINT_DEFAULTS.get(k) != v}
    if said.get("readOnlyHint"):  # destructive and idempotent mean something only for a tool that writes
        said = {k: v for k, v in said.items() if k not in ("destructiveHint", "idempotentHint")}
    return types.ToolAnnotations.model_validate(said) if said else None


def output_schema(cmd: Command | None) -> dict[str, Any] | None:
    """The outputSchema of a command that declared a result model: what its envelope's `result`
    holds. None otherwise: the envelope itself is described once, in the server's instructions."""
    if cmd is None or cmd.result_schema is None:
        return None
    result = lean(json.loads(json.dumps(cmd.result_schema)))
    defs = result.pop("$defs", None)
    schema: dict[str, Any] = {"type": "object", "properties": {"result": {"anyOf": [result, _NULL]}}}
    if defs:
        schema["$defs"] = defs
    return schema


def wire_bytes(tools: list[Any]) -> int:
    """The size of a tool list as a client receives it: compact JSON of each definition."""
    return sum(len(wire_json(t)) for t in tools)


def wire_json(tool: Any) -> str:
    """One tool definition as compact JSON, the way it crosses the wire."""
    return json.dumps(tool.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":"))


def tokens(n_bytes: int) -> int:
    """An estimate of the LLM tokens `n_bytes` of compact JSON cost (TOKEN_BYTES per token)."""
    return round(n_bytes / TOKEN_BYTES)
