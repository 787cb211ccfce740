"""What this peer itself declares: the commands it will run, their gates, and its preferences.

The peer decides alone what runs in its Blender. A server's command table only names commands; the
handler, the gate, the undo flag and the parameter schema of each come from here: the addon's own
built-in plugin, the plugins installed in this Python (the headless peer) or bundled in a built
extension (`declarations.json`, written by `blendbus addon build`). A command this peer does not
declare runs only if its handler lives in a package the peer accepted from the server through live
sync (preference `accept_plugin_handlers_from_server`), since the peer then runs that server's code
by its own choice. Anything else is refused with a message saying why. bpy-free.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blendbus.protocol import ACCEPT_HANDLERS_GATE as ACCEPT_GATE
from blendbus.sync import ADDON_PACKAGE, handler_package

BUNDLED = Path(__file__).with_name("declarations.json")
"""Written into a built extension: the declarations of every plugin bundled with it."""

PEER_PLUGINS_ENV = "BLENDBUS_PEER_PLUGINS"
"""Comma-separated NAME=MODULE plugins this peer declares although they are not installed."""
PACKAGE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
"""A handler package name: dotted identifiers, nothing that could name a path."""


def extra_plugins(spec: str) -> list[tuple[str, object]]:
    """Import the NAME=MODULE plugins of `spec` (see PEER_PLUGINS_ENV)."""
    found = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, module = item.partition("=")
        if not sep or not PACKAGE_RE.match(module.strip()):
            raise ValueError(f"{PEER_PLUGINS_ENV}: {item!r} is not NAME=MODULE")
        found.append((name.strip(), importlib.import_module(module.strip())))
    return found


def in_package(handler: str, packages: set[str] | frozenset[str]) -> bool:
    """Whether `handler` ('pkg.mod:fn') lives in one of `packages` (or a subpackage of one)."""
    module = handler.partition(":")[0]
    return any(module == pkg or module.startswith(pkg + ".") for pkg in packages)


@dataclass(frozen=True)
class Declarations:
    """The commands and preferences this peer holds, as wires (`Command.wire()`, `Preference.wire()`)."""

    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    preferences: list[dict[str, Any]] = field(default_factory=list)

    @property
    def packages(self) -> frozenset[str]:
        """The handler packages this peer holds: the addon's own and its plugins'."""
        return frozenset({ADDON_PACKAGE} | {handler_package(w["handler"]) for w in self.commands.values()})

    @property
    def defaults(self) -> dict[str, Any]:
        return {d["key"]: d["default"] for d in self.preferences}

    @classmethod
    def of(cls, plugins: Any) -> Declarations:
        """From a loaded `PluginSet`."""
        return cls({c.name: c.wire() for c in plugins.commands.values()},
                   [p.wire() for p in plugins.preferences.values()])

    def to_json(self) -> str:
        return json.dumps({"commands": list(self.commands.values()), "preferences": self.preferences}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Declarations:
        data = json.loads(text)
        return cls({w["name"]: w for w in data["commands"]}, data["preferences"])

    @classmethod
    def load(cls) -> Declarations:
        """A built extension's bundled declarations, else the plugins installed in this Python plus the
        plugin modules named in `BLENDBUS_PEER_PLUGINS` (`blendbus peer --plugin`), else the core's own
        built-in plugin alone (a broken plugin install must not stop the addon from registering)."""
        if BUNDLED.exists():
            return cls.from_json(BUNDLED.read_text())
        from blendbus.plugins import load_plugins

        try:
            return cls.of(load_plugins(extra=extra_plugins(os.environ.get(PEER_PLUGINS_ENV, ""))))
        except Exception:  # noqa: BLE001
            from blendbus import builtin

            return cls.of(load_plugins(extra=[("core", builtin)], env={"BLENDBUS_LOAD_PLUGINS": "core"}))


@dataclass
class CommandTable:
    """The commands this peer runs, after weighing the server's table against its own declarations."""

    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    """Commands the server named that this peer will not run, with the reason to give the caller."""

    @classmethod
    def build(cls, local: Declarations, server: list[dict[str, Any]], synced: set[str]) -> CommandTable:
        """Local declarations win; a command only the server declares needs a synced handler package."""
        table = cls()
        for wire in server:
            name = str(wire.get("name", ""))
            mine = local.commands.get(name)
            if mine is not None:
                table.commands[name] = mine
            elif isinstance(wire.get("handler"), str) and in_package(wire["handler"], synced):
                table.commands[name] = wire
            else:
                table.refused[name] = (
                    f"this Blender peer does not declare the command {name!r}: install its plugin next to"
                    f" Blender, or enable '{ACCEPT_GATE}' so the server can send the plugin's handlers")
        return table
