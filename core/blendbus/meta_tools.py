"""Progressive disclosure (`--tools compact`): three tools that stand for the whole list.

An LLM that does a few things per conversation should not pay for forty tool definitions up front.
With a compact profile it lists these three instead, finds what it needs by keyword, reads that one
definition, and calls it through `blender_call_tool`. A call made that way goes through exactly the
admission a direct call does (role, profile, App-only, schema, size) and comes back as the tool's
own result, so nothing is reachable here that is not reachable directly.
"""

from __future__ import annotations

import json
import re
from typing import Any

import mcp_types as types

from .listing import wire_json
from .suggest import did_you_mean

FIND, DESCRIBE, CALL = "blender_find_tools", "blender_describe_tool", "blender_call_tool"
NAMES = (FIND, DESCRIBE, CALL)
DEFAULT_MATCHES, MAX_MATCHES = 8, 50
_WORD = re.compile(r"[a-z0-9]+")
_NAME = {"type": "string", "minLength": 1, "maxLength": 200}


def definitions() -> list[types.Tool]:
    """The three meta-tools as a client lists them."""
    read_only = types.ToolAnnotations(read_only_hint=True)
    return [
        types.Tool(name=FIND, description="Find Blender tools by keywords (e.g. 'render image', 'hdri'): names and"
                   " one-line summaries, best first. An empty query lists them all.", input_schema={
                       "type": "object", "additionalProperties": False, "properties": {
                           "query": {"type": "string", "maxLength": 500},
                           "limit": {"type": "integer", "minimum": 1, "maximum": MAX_MATCHES,
                                     "default": DEFAULT_MATCHES}}}, annotations=read_only),
        types.Tool(name=DESCRIBE, description="A tool's full definition (description and input schema), to call it"
                   " with blender_call_tool.", input_schema={
                       "type": "object", "additionalProperties": False, "required": ["name"],
                       "properties": {"name": _NAME}}, annotations=read_only),
        types.Tool(name=CALL, description="Call a tool found with blender_find_tools, with its arguments; returns"
                   " that tool's own result.", input_schema={
                       "type": "object", "additionalProperties": False, "required": ["name"],
                       "properties": {"name": _NAME, "arguments": {"type": "object"}}}),
    ]


def _summary(tool: types.Tool) -> str:
    text = (tool.description or "").strip()
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first[:200]


def find(tools: list[types.Tool], query: str, limit: int = DEFAULT_MATCHES) -> dict[str, Any]:
    """The tools whose name or description share words with `query`, best first: a word in the name
    counts three times one in the description, so `render` finds blender_render before tools that
    merely mention rendering."""
    words = set(_WORD.findall(query.lower()))
    scored = []
    for tool in tools:
        name_words = set(_WORD.findall(tool.name.lower()))
        text_words = set(_WORD.findall(f"{tool.title or ''} {tool.description or ''}".lower()))
        score = sum(3 * (w in name_words) + (w in text_words) for w in words)
        if score or not words:
            scored.append((-score, tool.name, tool))
    scored.sort(key=lambda s: (s[0], s[1]))
    return {"tools": [{"name": t.name, "summary": _summary(t)} for _, _, t in scored[:limit]],
            "matched": len(scored), "of": len(tools)}


def describe(tools: list[types.Tool], name: str) -> dict[str, Any]:
    """One tool's definition as tools/list would give it; LookupError for a tool the caller cannot see."""
    for tool in tools:
        if tool.name == name:
            return json.loads(wire_json(tool))
    raise LookupError(f"unknown tool {name!r}{did_you_mean(name, [t.name for t in tools])};"
                      f" {FIND} finds tools by keyword")
