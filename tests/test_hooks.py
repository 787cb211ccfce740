"""Every hook is documented with its exact signature and has a test of its own (datasette-style)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from blendbus import (App, Command, Completion, DeclarationError, Preference, Prompt, PromptArgument, Resource, hookimpl,
                      hookspecs)
from blendbus.plugins import PluginInfo, collect

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins" / "hooks.md"
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if callable(fn) and hasattr(fn, "blendbus_spec"))


def signature(name: str) -> str:
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def test_there_are_hooks():
    assert HOOKS == ["register_apps", "register_commands", "register_preferences", "register_prompts",
                     "register_resources"]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature(hook):
    text = DOCS.read_text()
    assert f"## {hook}\n" in text
    assert f"```python\n{signature(hook)}\n```" in text, signature(hook)
    section = text.split(f"## {hook}\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"Added in blendbus \d+\.\d+\.\d+", section) and "@hookimpl" in section
    assert getattr(hookspecs, hook).__doc__, "every hook has a one-line docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    assert f"test_hook_{hook}" in globals()


def plugin(**hooks) -> PluginInfo:
    return PluginInfo(name="probe", module=SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()}))


def test_hook_register_preferences():
    def register_preferences(register):
        register(Preference("probe.enabled", "bool", True, "on"))

    found = collect([plugin(register_preferences=register_preferences)])
    assert found.preferences["probe.enabled"].default is True


def test_hook_register_commands():
    def register_preferences(register):
        register(Preference("probe.enabled", "bool", False))

    def register_commands(register):
        register(Command(name="probe_go", description="go", handler="probe.addon:go", gate="probe.enabled"))

    found = collect([plugin(register_preferences=register_preferences, register_commands=register_commands)])
    assert found.commands["probe_go"].gate == "probe.enabled" and found.owner["probe_go"].name == "probe"


def test_hook_register_resources():
    def register_commands(register):
        register(Command(name="probe_go", description="go", handler="probe.addon:go"))

    def register_resources(register):
        register(Resource("blender://probe/{id}", "probe", "probe_go"))

    found = collect([plugin(register_commands=register_commands, register_resources=register_resources)])
    assert found.resources[0].is_template and found.resources[0].command == "probe_go"


def test_hook_register_prompts():
    def register_prompts(register):
        register(Prompt("probe_tour", "Tour the scene", "Show me {what}.", (PromptArgument("what", required=True),)))

    found = collect([plugin(register_prompts=register_prompts)])
    assert found.prompts["probe_tour"].render({"what": "the lights"}) == "Show me the lights."
    with pytest.raises(ValueError, match="needs what"):
        found.prompts["probe_tour"].render({})
    def register_prompts_again(register):
        register(Prompt("probe_tour", "Another tour", "Show me everything."))

    twice = collect([plugin(register_prompts=register_prompts), PluginInfo(name="other", module=SimpleNamespace(
        register_prompts=hookimpl(register_prompts_again)))])
    assert "prompt 'probe_tour' is declared by another plugin too" in twice.plugins[1].error


def test_hook_register_apps():
    def register_apps(register):
        register(App("ui://blendbus/viewport", "Viewport", "blendbus_scene:viewport.html", prefers_border=True))

    def register_commands(register):
        register(Command(name="probe_look", description="look", handler="probe.addon:look", app="ui://blendbus/viewport"))
        register(Command(name="probe_poke", description="poke", handler="probe.addon:poke", app="ui://blendbus/viewport",
                         visibility=("app",)))

    found = collect([plugin(register_apps=register_apps, register_commands=register_commands)])
    app = found.apps["ui://blendbus/viewport"]
    assert app.document.startswith("<!doctype html>") and app.ui_meta == {"prefersBorder": True}
    assert not found.commands["probe_look"].app_only and found.commands["probe_poke"].app_only

    def register_commands_elsewhere(register):
        register(Command(name="probe_look", description="look", handler="probe.addon:look", app="ui://probe/viewprot"))

    dangling = collect([plugin(register_apps=register_apps, register_commands=register_commands_elsewhere)])
    assert "app 'ui://probe/viewprot' is not declared (register_apps)" in dangling.plugins[0].error
    with pytest.raises(DeclarationError, match="cannot read 'blendbus_scene:nothing.html'"):
        App("ui://probe/none", "None", "blendbus_scene:nothing.html")
    with pytest.raises(DeclarationError, match="only an App calls needs that App"):
        Command(name="probe_poke", description="poke", handler="probe.addon:poke", visibility=("app",))
    with pytest.raises(DeclarationError, match="visibility takes one or both"):
        Command(name="probe_poke", description="poke", handler="probe.addon:poke", visibility=("llm",))


def test_registering_the_wrong_kind_fails_only_that_plugin():
    def register_commands(register):
        register(Preference("probe.x", "bool", False))

    found = collect([plugin(register_commands=register_commands)])
    assert "expected Command" in found.plugins[0].error and not found.commands


@pytest.mark.parametrize("declaration", [Command, Preference, Resource, Prompt, Completion, App],
                         ids=lambda cls: cls.__name__)
def test_every_declaration_field_is_documented(declaration):
    """docs/plugins/command.md has a table per declaration with a row for each of its fields."""
    import dataclasses

    text = (Path(__file__).parent.parent / "docs" / "plugins" / "command.md").read_text()
    section = re.search(rf"^## {declaration.__name__}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, f"docs/plugins/command.md has no '## {declaration.__name__}' section"
    missing = [f.name for f in dataclasses.fields(declaration) if f"| `{f.name}` |" not in section.group(1)]
    assert not missing, f"docs/plugins/command.md, {declaration.__name__}: document {missing}"
