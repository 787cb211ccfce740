"""What a plugin declares besides tools: Resources, Prompts with their arguments, the Completions a
host's autocomplete asks for, and Apps (MCP Apps views). Each names the Commands that serve it.

Like a Command, each declaration is checked when it is built, so a plugin author sees a mistake at
load time with the plugin's name on it.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

from .command import APP_SCHEME, HTML_RE, NAME_RE, DeclarationError
from .protocol import CONTENT_KEY, content_problem


@dataclass(frozen=True)
class Completion:
    """Where the values of a prompt argument or a resource-template variable come from, for a host's
    autocomplete (MCP `completion/complete`): a read-only command, run on the caller's Blender with
    `params`, whose result lists the candidates. The server keeps those that match what the user typed.

    `items` is where the list is in the result (a key, or dotted keys); a list of strings is taken as
    is, and of objects, each one's `key`."""

    command: str
    params: dict[str, Any] = field(default_factory=dict)
    items: str = "items"
    key: str = "name"

    def __post_init__(self) -> None:
        if not isinstance(self.command, str) or not NAME_RE.match(self.command):
            raise DeclarationError(f"completion: command {self.command!r} is not a command name")

    def candidates(self, result: Any) -> list[str]:
        """The values a command's `result` offers (none, if it is not shaped as declared)."""
        found = result
        for part in self.items.split(".") if self.items else ():
            found = found.get(part) if isinstance(found, dict) else None
        if not isinstance(found, list):
            return []
        values = (item.get(self.key) if isinstance(item, dict) else item for item in found)
        return [value for value in values if isinstance(value, str)]


@dataclass(frozen=True)
class Resource:
    """An MCP resource whose contents come from running a command on the peer.

    `uri` may be a template such as ``blender://scene/object/{name}``: each ``{var}`` becomes the
    command parameter of the same name.
    """

    uri: str
    name: str
    command: str
    description: str = ""
    mime_type: str = "application/json"
    params: dict[str, Any] = field(default_factory=dict)
    complete: dict[str, Completion] = field(default_factory=dict)
    """A template's variables' completion sources, by variable name."""

    def __post_init__(self) -> None:
        if "://" not in self.uri:
            raise DeclarationError(f"resource {self.name!r}: uri {self.uri!r} needs a scheme")
        if not NAME_RE.match(self.command):
            raise DeclarationError(f"resource {self.name!r}: command {self.command!r} is not a command name")
        unknown = set(self.complete) - set(self.variables)
        if unknown:
            raise DeclarationError(f"resource {self.name!r}: complete names {sorted(unknown)}, which are not"
                                   f" variables of {self.uri!r}")

    @property
    def variables(self) -> list[str]:
        """The template's variables (none for a plain URI)."""
        return [name.strip("{}").lstrip("+#./;?&") for name in re.findall(r"\{[^}]+\}", self.uri)]

    @property
    def is_template(self) -> bool:
        return "{" in self.uri


@dataclass(frozen=True)
class PromptArgument:
    """An argument the user fills in when picking a Prompt in their MCP host."""

    name: str
    description: str = ""
    required: bool = False
    complete: Completion | None = None
    """Where the argument's values come from, for the host's autocomplete."""


@dataclass(frozen=True)
class Prompt:
    """An MCP prompt: a ready-made instruction an LLM host offers its user, such as "build a scene".

    `text` is the message, with `{argument}` fields filled from the arguments the user gives; `content`
    adds messages of other kinds after it (an image, a resource: results' content blocks, protocol.CONTENT_KEY),
    their string fields filled the same way."""

    name: str
    description: str
    text: str
    arguments: tuple[PromptArgument, ...] = ()
    title: str | None = None
    content: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        where = f"prompt {self.name!r}"
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise DeclarationError(f"{where}: name must match {NAME_RE.pattern}")
        if not self.description or not self.text:
            raise DeclarationError(f"{where}: a description and a text are required")
        object.__setattr__(self, "arguments", tuple(self.arguments))
        declared = {a.name for a in self.arguments}
        used = {field for _, field, _, _ in string.Formatter().parse(self.text) if field}
        if used - declared:
            raise DeclarationError(f"{where}: text uses {sorted(used - declared)}, which are not declared arguments")
        object.__setattr__(self, "content", tuple(self.content))
        sample = self.blocks({a: "test://value" for a in declared})  # every argument filled: is what remains sound?
        problem = content_problem({CONTENT_KEY: sample})
        if problem is not None:
            raise DeclarationError(f"{where}: content: {problem}")

    def blocks(self, arguments: dict[str, str]) -> list[dict[str, Any]]:
        """`content` with `{argument}` fields in its strings filled from `arguments`."""
        fill = {a.name: arguments.get(a.name, "") for a in self.arguments}
        return [{key: value.format(**fill) if isinstance(value, str) and key != "data" and key != "blob" else value
                 for key, value in block.items()} for block in self.content]

    def render(self, arguments: dict[str, str]) -> str:
        """The text with `arguments` filled in; a missing required or an unknown argument is a ValueError."""
        known = {a.name for a in self.arguments}
        unknown = set(arguments) - known
        if unknown:
            raise ValueError(f"prompt {self.name!r} takes {sorted(known) or 'no arguments'}, not {sorted(unknown)}")
        missing = [a.name for a in self.arguments if a.required and not arguments.get(a.name)]
        if missing:
            raise ValueError(f"prompt {self.name!r} needs {', '.join(missing)}")
        return self.text.format(**{a.name: arguments.get(a.name, "") for a in self.arguments})


@dataclass(frozen=True)
class App:
    """An MCP App (extension `io.modelcontextprotocol/ui`): one self-contained HTML document that a
    host which speaks MCP Apps shows, in a sandboxed frame, beside the results of the Commands that
    name it (`Command.app`). The host's default content security policy allows no network: the
    document carries its own script and style, and gets images as data: URIs through tool calls.

    `html` names the document inside the plugin's package, ``"package:file.html"``."""

    uri: str
    name: str
    html: str
    description: str = ""
    prefers_border: bool | None = None

    def __post_init__(self) -> None:
        where = f"app {self.uri!r}"
        if not isinstance(self.uri, str) or not self.uri.startswith(APP_SCHEME) or len(self.uri) <= len(APP_SCHEME):
            raise DeclarationError(f"{where}: the uri must start with {APP_SCHEME}")
        if not isinstance(self.html, str) or not HTML_RE.match(self.html) or ".." in self.html.split(":")[1].split("/"):
            raise DeclarationError(f"{where}: html must look like 'package:file.html' (inside the package),"
                                   f" got {self.html!r}")
        try:
            self.document  # noqa: B018 - reading it now is the check: a missing file fails at load time
        except (OSError, ModuleNotFoundError, UnicodeDecodeError) as exc:
            raise DeclarationError(f"{where}: cannot read {self.html!r}: {exc}") from None

    @cached_property
    def document(self) -> str:
        """The HTML text, read from the package once."""
        package, _, path = self.html.partition(":")
        return resources.files(package).joinpath(path).read_text(encoding="utf-8")

    @property
    def ui_meta(self) -> dict[str, Any]:
        """The resource's `_meta.ui`: what the host should know about rendering it."""
        return {} if self.prefers_border is None else {"prefersBorder": self.prefers_border}
