"""Tool profiles: which tools a caller sees and may call, and whether it sees them one by one.

Each listed tool costs an LLM its description and schema in every conversation, and each tool it may
call is something it can do to a scene. `blendbus serve --tools PROFILE` sets the server's profile;
a token's `tools` narrows it further for whoever holds that token, so a studio can give an
artist's assistant only what it needs. A profile is a comma-separated list of

- `all`: every loaded plugin's tools (the default);
- `core`: the core's own commands (code) and the scene plugin;
- a plugin name (`polyhaven`), or a tool name (`blender_render`);
- `compact`: list three meta-tools (find, describe, call) instead of the tools themselves;
- or a path to a file holding such items, one or more per line, `#` starting a comment.

The bus's own tools (list peers, get, cancel and watch jobs) are in every profile, and the peers'
tools are reached by the peer role whatever the profile: a profile is about what an LLM does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .plugins import BUILTIN
from .protocol import TOOL_PREFIX
from .suggest import did_you_mean

ALL, CORE, COMPACT = "all", "core", "compact"
CORE_PLUGINS = frozenset({BUILTIN, "scene"})


@dataclass(frozen=True)
class Toolset:
    """A caller's tools: `names` (None: every tool) and whether they are listed as meta-tools."""

    names: frozenset[str] | None = None
    compact: bool = False

    def admits(self, tool_name: str) -> bool:
        return self.names is None or tool_name in self.names

    def narrowed(self, other: Toolset | None) -> Toolset:
        """What a caller holding `other` (a token's profile) gets on a server with this one."""
        if other is None:
            return self
        if self.names is None or other.names is None:
            names = other.names if self.names is None else self.names
        else:
            names = self.names & other.names
        return Toolset(names, self.compact or other.compact)


EVERYTHING = Toolset()


def parse(spec: str, groups: Mapping[str, Iterable[str]], always: Iterable[str], *, files: bool = True) -> Toolset:
    """The Toolset a profile names. `groups` maps each plugin to its tool names; `always` holds the
    tools in every profile (the bus's own). With `files` false (a token's profile) a path is not read.

    Raises ValueError naming the item it does not know, with the nearest known name."""
    by_plugin = {name: set(tools) for name, tools in groups.items()}
    always = frozenset(always)
    known = set().union(*by_plugin.values()) | always
    items = [i.strip() for i in spec.split(",") if i.strip()]
    if (files and len(items) == 1 and items[0] not in {ALL, CORE, COMPACT, *by_plugin, *known}
            and Path(items[0]).is_file()):
        items = _file_items(Path(items[0]))
    names: set[str] = set()
    everything = compact = False
    for item in items:
        if item == COMPACT:
            compact = True
        elif item == ALL:
            everything = True
        elif item == CORE:
            names.update(*(by_plugin.get(name, ()) for name in CORE_PLUGINS))
        elif item in by_plugin:
            names.update(by_plugin[item])
        elif item in known:
            names.add(item)
        elif "/" in item or "\\" in item:
            raise ValueError(f"tools profile: no file {item!r}" + ("" if files else " (a token's profile names no files)"))
        else:
            hint = did_you_mean(item, [*by_plugin, *known, ALL, CORE, COMPACT])
            kind = "tool" if item.startswith(TOOL_PREFIX) else "plugin or profile"
            raise ValueError(f"tools profile: unknown {kind} {item!r}{hint}; use {ALL}, {CORE}, {COMPACT}, a plugin"
                             f" ({', '.join(sorted(by_plugin))}), a tool name, or a file of them")
    if not (names or everything or compact):
        raise ValueError(f"tools profile {spec!r} names no tools")
    if everything or not names:  # `compact` alone: every tool, behind the meta-tools
        return Toolset(None, compact)
    return Toolset(frozenset(names | always), compact)


def _file_items(path: Path) -> list[str]:
    items: list[str] = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read tools profile file {path}: {exc}") from None
    for line in text.splitlines():
        items.extend(i.strip() for i in line.split("#", 1)[0].replace(",", " ").split() if i.strip())
    if not items:
        raise ValueError(f"tools profile file {path} names nothing")
    return items
