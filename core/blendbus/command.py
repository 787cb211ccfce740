"""What a plugin declares for its tools: Commands and the Preferences that gate and tune them
(primitives.py holds the rest: Resources, Prompts, Completions and Apps).

Each declaration is checked when it is built, so a plugin author sees a mistake at load time with
the plugin's name on it rather than a confusing failure inside Blender later.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel

from .protocol import EXPECT_REVISION, GATE_ASK, TOOL_PREFIX, VERIFY

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""MCP's tool-name characters (SEP-986)."""
HANDLER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
PREFERENCE_KEY_RE = re.compile(r"^([a-z][a-z0-9_]*\.)?[a-z][a-z0-9_]*$")
RESERVED_ARGUMENTS = frozenset({"target_uuid", "timeout_s", EXPECT_REVISION, VERIFY})
"""Arguments dispatch tools add to a Command's own parameters (expect_revision and verify: those that
change the scene)."""

VISIBILITIES = ("model", "app")
"""Who may call a Command's tool (MCP Apps `_meta.ui.visibility`): the LLM, the App's view, or both."""
APP_SCHEME = "ui://"
HTML_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z0-9_][A-Za-z0-9_./-]*\.html$")

ANNOTATION_KEYS = {
    "read_only": "readOnlyHint",
    "destructive": "destructiveHint",
    "idempotent": "idempotentHint",
    "open_world": "openWorldHint",
}


class DeclarationError(ValueError):
    """A plugin declared something blendbus cannot serve; the message says what to fix."""


def _schema_of(params: type[BaseModel] | dict[str, Any], where: str) -> dict[str, Any]:
    if isinstance(params, type) and issubclass(params, BaseModel):
        schema = params.model_json_schema()
    elif isinstance(params, dict):
        schema = copy.deepcopy(params)
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise DeclarationError(f"{where}: params is not a valid JSON schema: {exc.message}") from None
    else:
        raise DeclarationError(f"{where}: params must be a pydantic model class or a JSON-schema dict")
    if schema.get("type") != "object":
        raise DeclarationError(f"{where}: params schema must have type 'object'")
    schema.setdefault("properties", {})
    # Unknown arguments are refused by name instead of being silently dropped.
    schema.setdefault("additionalProperties", False)
    schema.pop("title", None)
    clash = RESERVED_ARGUMENTS & set(schema["properties"])
    if clash:
        raise DeclarationError(f"{where}: parameter names {sorted(clash)} are reserved by blendbus")
    return schema


@dataclass(frozen=True)
class Command:
    """One Blender capability: an MCP tool on the server and a handler inside Blender."""

    name: str
    description: str
    handler: str
    params: type[BaseModel] | dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    gate: str | None = None
    timeout: float = 60.0
    annotations: dict[str, bool] = field(default_factory=dict)
    undo: bool = False
    result: type[BaseModel] | dict[str, Any] | None = None
    title: str | None = None
    long_running: bool = False
    """Takes minutes (a render, a generation): a client that speaks MCP tasks gets a task at once."""
    app: str | None = None
    """The `ui://` App (declared with `register_apps`) a host that speaks MCP Apps shows this tool's results in."""
    visibility: tuple[str, ...] = VISIBILITIES
    """("app",): only that App's view calls the tool; the LLM never sees it, nor does a client without Apps."""
    changes_scene: bool | None = None
    """False: the handler puts back whatever it touches (a render, an export), so the depsgraph updates it
    causes are not reported as scene changes. None: False for `read_only` commands, else True."""
    tool: str | None = None
    """The MCP tool name, when a convention outside blendbus fixes it (the conformance suite's reference
    tools): default `blender_<name>`. It may not start with `blender_`, which is blendbus's own."""

    def __post_init__(self) -> None:
        where = f"command {self.name!r}"
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise DeclarationError(f"{where}: name must match {NAME_RE.pattern}")
        if self.tool is not None and (not isinstance(self.tool, str) or not TOOL_NAME_RE.match(self.tool)
                                      or self.tool.startswith(TOOL_PREFIX)):
            raise DeclarationError(f"{where}: tool must match {TOOL_NAME_RE.pattern} and not start with"
                                   f" {TOOL_PREFIX!r} (leave it unset for {TOOL_PREFIX}{self.name})")
        if not isinstance(self.handler, str) or not HANDLER_RE.match(self.handler):
            raise DeclarationError(f"{where}: handler must look like 'package.module:function', got {self.handler!r}")
        if not self.description or not isinstance(self.description, str):
            raise DeclarationError(f"{where}: a description is required (the LLM reads it)")
        if not (isinstance(self.timeout, int | float) and self.timeout > 0):
            raise DeclarationError(f"{where}: timeout must be a positive number of seconds")
        if self.gate is not None and not PREFERENCE_KEY_RE.match(self.gate):
            raise DeclarationError(f"{where}: gate {self.gate!r} is not a preference key")
        unknown = set(self.annotations) - set(ANNOTATION_KEYS)
        if unknown:
            raise DeclarationError(f"{where}: unknown annotations {sorted(unknown)}; use {sorted(ANNOTATION_KEYS)}")
        if self.app is not None and not (isinstance(self.app, str) and self.app.startswith(APP_SCHEME)):
            raise DeclarationError(f"{where}: app must be a {APP_SCHEME} URI declared with register_apps,"
                                   f" got {self.app!r}")
        object.__setattr__(self, "visibility", tuple(self.visibility))
        if not self.visibility or set(self.visibility) - set(VISIBILITIES):
            raise DeclarationError(f"{where}: visibility takes one or both of {VISIBILITIES}, not {self.visibility!r}")
        if "model" not in self.visibility and self.app is None:
            raise DeclarationError(f"{where}: a tool only an App calls needs that App: set app='ui://...'")
        # Computing the schemas now is the validation; cache them for every later list_tools.
        object.__setattr__(self, "_input_schema", _schema_of(self.params, where))
        result_schema = None
        if self.result is not None:
            result_schema = (
                self.result.model_json_schema()
                if isinstance(self.result, type) and issubclass(self.result, BaseModel)
                else copy.deepcopy(self.result)
            )
        object.__setattr__(self, "_result_schema", result_schema)

    @property
    def tool_name(self) -> str:
        return self.tool or TOOL_PREFIX + self.name

    @property
    def input_schema(self) -> dict[str, Any]:
        """The JSON schema of the handler's own keyword arguments."""
        return self._input_schema  # type: ignore[attr-defined,no-any-return]

    @property
    def result_schema(self) -> dict[str, Any] | None:
        """The JSON schema of the handler's return value, when the plugin declared one."""
        return self._result_schema  # type: ignore[attr-defined,no-any-return]

    @property
    def handler_module(self) -> str:
        return self.handler.partition(":")[0]

    @property
    def app_only(self) -> bool:
        """Only its App's view calls it: hidden from the LLM and from clients without MCP Apps."""
        return "model" not in self.visibility

    @property
    def scene_neutral(self) -> bool:
        """Whether the peer keeps quiet about the depsgraph updates this command causes."""
        if self.changes_scene is None:
            return self.annotations.get("read_only") is True
        return not self.changes_scene

    def wire(self) -> dict[str, Any]:
        """What a peer needs to run this command: sent on registration, so it is declared once."""
        return {
            "name": self.name,
            "handler": self.handler,
            "gate": self.gate,
            "undo": self.undo,
            "params_schema": self.input_schema,
            "scene_neutral": self.scene_neutral,
        }


PreferenceType = Literal["bool", "str", "int", "float", "enum", "gate"]


@dataclass(frozen=True)
class Preference:
    """An addon preference a plugin needs: an enable switch, an API key, a mode, a URL."""

    key: str
    type: PreferenceType
    default: Any
    description: str = ""
    secret: bool = False
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not PREFERENCE_KEY_RE.match(self.key):
            raise DeclarationError(f"preference {self.key!r}: key must look like 'plugin.field'")
        if self.type not in ("bool", "str", "int", "float", "enum", "gate"):
            raise DeclarationError(f"preference {self.key!r}: unknown type {self.type!r}")
        if self.type == "enum" and self.default not in self.choices:
            raise DeclarationError(f"preference {self.key!r}: default {self.default!r} is not one of {self.choices}")
        try:
            self.coerce(self.default)
        except ValueError as exc:
            raise DeclarationError(f"preference {self.key!r}: bad default: {exc}") from None

    def coerce(self, value: Any) -> Any:
        """Turn a value from the command line or a JSON payload into this preference's type. A `gate`
        is a bool with a third value, `ask` (the person decides each time: protocol.gate_state)."""
        if self.type in ("bool", "gate"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            if self.type == "gate" and text == GATE_ASK:
                return GATE_ASK
            raise ValueError(f"{self.key} takes true{', ask' if self.type == 'gate' else ''} or false, not {value!r}")
        if self.type == "int":
            return int(value)
        if self.type == "float":
            return float(value)
        text = str(value)
        if self.type == "enum" and text not in self.choices:
            raise ValueError(f"{self.key} takes one of {', '.join(self.choices)}, not {text!r}")
        return text

    def wire(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "type": self.type,
            "default": self.default,
            "description": self.description,
            "secret": self.secret,
            "choices": list(self.choices),
        }
