"""Finding, loading and checking plugins.

Every plugin is loaded and asked for its declarations inside its own try/except. A plugin that
fails is rolled back whole and reported by name; the others keep serving (pytest/tox style). One
module on purpose: finding, loading and checking a plugin against the others is one transaction,
and its rollback must see every step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .command import Command, DeclarationError, Preference
from .primitives import App, Prompt, Resource
from .suggest import did_you_mean

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "blendbus"
BUILTIN = "core"
"""The built-in plugin (execute_code): always loaded, through the same hooks as any other."""
HOOK_NAMES = ("register_preferences", "register_commands", "register_resources", "register_prompts",
              "register_apps")


@dataclass
class PluginInfo:
    """One plugin as `blendbus plugins` reports it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: ModuleType | None = None
    hooks: list[str] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    preferences: list[Preference] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)
    apps: list[App] = field(default_factory=list)
    error: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "commands": [
                {"name": c.name, "tool": c.tool_name, "gate": c.gate, "handler": c.handler} for c in self.commands
            ],
            "preferences": [p.key for p in self.preferences],
            "resources": [r.uri for r in self.resources],
            "prompts": [p.name for p in self.prompts],
            "apps": [a.uri for a in self.apps],
            "error": self.error,
        }


@dataclass
class PluginSet:
    """The loaded plugins and everything they declared, indexed the way the server looks it up."""

    plugins: list[PluginInfo]
    commands: dict[str, Command]
    preferences: dict[str, Preference]
    resources: list[Resource]
    owner: dict[str, PluginInfo]
    """command name -> the plugin that declared it."""
    prompts: dict[str, Prompt] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    """ui:// uri -> the MCP App declared there."""

    @property
    def errors(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def __post_init__(self) -> None:
        self._by_tool = {cmd.tool_name: cmd for cmd in self.commands.values()}

    def by_tool(self, tool_name: str) -> Command | None:
        return self._by_tool.get(tool_name)


SELECTION_VARIABLES = ("BLENDBUS_LOAD_PLUGINS", "BLENDBUS_DISABLE_PLUGINS")


def _names(env: dict[str, str], variable: str) -> set[str]:
    return {n.strip() for n in env.get(variable, "").split(",") if n.strip()}


def _selected(name: str, env: dict[str, str]) -> bool:
    if name == BUILTIN:
        return True
    if env.get("BLENDBUS_LOAD_PLUGINS") is not None:
        return name in _names(env, "BLENDBUS_LOAD_PLUGINS")
    return name not in _names(env, "BLENDBUS_DISABLE_PLUGINS")


def _unknown_selections(env: dict[str, str], installed: set[str]) -> list[PluginInfo]:
    """A name in BLENDBUS_LOAD_PLUGINS / BLENDBUS_DISABLE_PLUGINS that no installed plugin has is a
    mistake to report (a typo would otherwise load nothing, or disable nothing, silently)."""
    return [PluginInfo(name=name, error=f"{variable} names {name!r}, but no installed plugin has that name"
                       f"{did_you_mean(name, installed)}; installed: {', '.join(sorted(installed))}")
            for variable in SELECTION_VARIABLES for name in sorted(_names(env, variable) - installed)]


def _distribution(ep: metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _entry_points() -> list[metadata.EntryPoint]:
    eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name != BUILTIN, ep.name))
    seen: set[str] = set()
    unique = []
    for ep in eps:  # the same distribution seen twice on sys.path must not look like a conflict
        if ep.name not in seen:
            seen.add(ep.name)
            unique.append(ep)
    return unique


def installed_plugins() -> dict[str, str]:
    """Entry-point name -> distribution name of every installed plugin."""
    return {ep.name: (_distribution(ep)[0] or ep.value) for ep in _entry_points()}


def load_plugins(
    extra: Iterable[tuple[str, object]] = (),
    env: dict[str, str] | None = None,
) -> PluginSet:
    """Load every selected entry-point plugin, plus `extra` (name, module-or-object) pairs.

    `extra` is how tests and embedders register a plugin object without installing it.
    """
    env = dict(os.environ) if env is None else env
    eps = _entry_points()
    infos: list[PluginInfo] = _unknown_selections(env, {ep.name for ep in eps} | {name for name, _ in extra})
    for ep in eps:
        if not _selected(ep.name, env):
            continue
        dist, version = _distribution(ep)
        info = PluginInfo(name=ep.name, distribution=dist, version=version)
        try:
            info.module = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure is this plugin's load error
            info.error = f"import of {ep.value!r} failed: {type(exc).__name__}: {exc}"
        infos.append(info)
    for name, obj in extra:
        infos.append(PluginInfo(name=name, module=obj))  # type: ignore[arg-type]
    return collect(infos)


def collect(infos: list[PluginInfo]) -> PluginSet:
    """Ask each plugin for its declarations and check them against each other."""
    pm = pluggy.PluginManager("blendbus")
    pm.add_hookspecs(hookspecs)
    for info in infos:
        if info.error or info.module is None:
            continue
        try:
            pm.register(info.module, name=info.name)
        except Exception as exc:  # noqa: BLE001
            info.error = f"not a valid plugin: {type(exc).__name__}: {exc}"
            continue
        unknown = _unknown_hooks(pm, info)
        if unknown:
            pm.unregister(info.module)
            info.error = unknown
            continue
        info.hooks = [h.name for h in pm.get_hookcallers(info.module) or [] if h.name in HOOK_NAMES]
        try:
            _declare(pm, info)
        except Exception as exc:  # noqa: BLE001
            info.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, DeclarationError) else str(exc)
            _forget(info)

    commands: dict[str, Command] = {}
    owner: dict[str, PluginInfo] = {}
    preferences: dict[str, Preference] = {}
    prompts: dict[str, Prompt] = {}
    apps: dict[str, App] = {}
    for info in infos:
        if info.error:
            continue
        problem = _conflicts(info, owner, preferences, prompts, apps)
        if problem:
            info.error = problem
            _forget(info)
            continue
        for prompt in info.prompts:
            prompts[prompt.name] = prompt
        for app in info.apps:
            apps[app.uri] = app
        for pref in info.preferences:
            preferences[pref.key] = pref
        for cmd in info.commands:
            commands[cmd.name] = cmd
            owner[cmd.name] = info

    # Gates and resources refer to other declarations; check them once everything is known.
    for info in infos:
        if info.error:
            continue
        problem = _dangling(info, commands, preferences, apps)
        if problem:
            info.error = problem
            for cmd in info.commands:
                commands.pop(cmd.name, None)
                owner.pop(cmd.name, None)
            for prompt in info.prompts:
                prompts.pop(prompt.name, None)
            for app in info.apps:
                apps.pop(app.uri, None)
            info.commands, info.resources, info.prompts, info.apps = [], [], [], []
    for info in infos:
        if info.error:
            log.error("blendbus plugin %r failed to load: %s", info.name, info.error)
    resources = [r for info in infos if not info.error for r in info.resources]
    return PluginSet(plugins=infos, commands=commands, preferences=preferences, resources=resources, owner=owner,
                     prompts=prompts, apps=apps)


def _forget(info: PluginInfo) -> None:
    """A plugin that failed to load declares nothing."""
    info.commands, info.preferences, info.resources, info.prompts, info.apps = [], [], [], [], []


def _unknown_hooks(pm: pluggy.PluginManager, info: PluginInfo) -> str | None:
    """A hook implementation whose name is no blendbus hook (pluggy's check_pending) would be
    silently ignored: name it, and the hook it was probably meant to be."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        names = sorted(name for name, caller in pm.hook.__dict__.items() if isinstance(caller, pluggy.HookCaller)
                       and not caller.has_spec() and any(i.plugin_name == info.name for i in caller.get_hookimpls()))
        return "; ".join(f"unknown hook {name!r}{did_you_mean(name, HOOK_NAMES)}: blendbus never calls it"
                         for name in names) or "a hook implementation has no blendbus hook"
    return None


def _declare(pm: pluggy.PluginManager, info: PluginInfo) -> None:
    """Run each hook of this one plugin, attributing every declaration to it."""
    sinks: dict[str, tuple[type, list[Any]]] = {
        "register_preferences": (Preference, info.preferences),
        "register_commands": (Command, info.commands),
        "register_resources": (Resource, info.resources),
        "register_prompts": (Prompt, info.prompts),
        "register_apps": (App, info.apps),
    }
    for hook_name in HOOK_NAMES:
        kind, sink = sinks[hook_name]
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name != info.name:
                continue
            impl.function(register=_registrar(kind, sink, hook_name))


def _registrar(kind: type, sink: list[Any], hook_name: str) -> Callable[[Any], None]:
    def register(item: Any) -> None:
        if not isinstance(item, kind):
            raise DeclarationError(f"{hook_name} registered {type(item).__name__}, expected {kind.__name__}")
        sink.append(item)

    return register


def _conflicts(info: PluginInfo, owner: dict[str, PluginInfo], preferences: dict[str, Preference],
               prompts: dict[str, Prompt], apps: dict[str, App]) -> str | None:
    mine: set[str] = set()
    taken = {c.tool_name: i.name for i in owner.values() for c in i.commands}
    for cmd in info.commands:
        if cmd.name in mine or cmd.tool_name in mine:
            return f"declares tool {cmd.tool_name!r} twice"
        mine |= {cmd.name, cmd.tool_name}
        if cmd.name in owner:
            return f"tool {cmd.tool_name!r} is claimed by both plugin {owner[cmd.name].name!r} and plugin {info.name!r}"
        if cmd.tool_name in taken:
            return f"tool {cmd.tool_name!r} is claimed by both plugin {taken[cmd.tool_name]!r} and plugin {info.name!r}"
    for pref in info.preferences:
        if pref.key in preferences:
            return f"preference {pref.key!r} is declared by another plugin too"
    for prompt in info.prompts:
        if prompt.name in prompts:
            return f"prompt {prompt.name!r} is declared by another plugin too"
    for app in info.apps:
        if app.uri in apps:
            return f"app {app.uri!r} is declared by another plugin too"
    return None


def _dangling(info: PluginInfo, commands: dict[str, Command], preferences: dict[str, Preference],
              apps: dict[str, App]) -> str | None:
    for cmd in info.commands:
        if cmd.app is not None and cmd.app not in apps:
            return (f"command {cmd.name!r}: app {cmd.app!r} is not declared (register_apps)"
                    f"{did_you_mean(cmd.app, apps)}")
        if cmd.gate is not None and cmd.gate not in preferences:
            return f"command {cmd.name!r}: gate {cmd.gate!r} is not a declared preference"
        if cmd.gate is not None and preferences[cmd.gate].type not in ("bool", "gate"):
            return f"command {cmd.name!r}: gate {cmd.gate!r} must be a bool or gate preference"
    for res in info.resources:
        if res.command not in commands:
            return f"resource {res.uri!r}: command {res.command!r} is not loaded"
    sources = [(f"resource {r.uri!r}", c) for r in info.resources for c in r.complete.values()]
    sources += [(f"prompt {pr.name!r}", a.complete) for pr in info.prompts for a in pr.arguments if a.complete]
    for where, source in sources:
        cmd = commands.get(source.command)
        if cmd is None:
            return f"{where}: completion command {source.command!r} is not loaded"
        if cmd.annotations.get("read_only") is not True:
            return f"{where}: completion command {source.command!r} must be read_only (it runs as the user types)"
    return None
