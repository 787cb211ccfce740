"""Every setting is documented, or this fails: each `Limits` field in docs/limits.md, each CLI verb's
flags in docs/cli.md (datasette's habit: the docs cannot fall behind the code unnoticed)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from blendbus.cli.parser import build_parser
from blendbus.dispatch import Limits

DOCS = Path(__file__).parent.parent / "docs"


def test_every_limit_is_in_limits_md():
    text = (DOCS / "limits.md").read_text()
    missing = [f.name for f in dataclasses.fields(Limits) if f"`{f.name}`" not in text]
    assert not missing, f"docs/limits.md does not name {missing}"


def _flags(parser: argparse.ArgumentParser, path: str = "blendbus") -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for action in parser._actions:  # argparse keeps no public list of a parser's options
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_flags(sub, f"{path} {name}"))
        elif action.option_strings and action.dest != "help" and action.help != argparse.SUPPRESS:  # internal flags
            found.setdefault(path, set()).add(max(action.option_strings, key=len))
    return found


def test_every_cli_flag_is_in_cli_md():
    text = (DOCS / "cli.md").read_text()
    missing = {verb: sorted(f for f in flags if f not in text) for verb, flags in _flags(build_parser()).items()}
    assert not any(missing.values()), f"docs/cli.md does not name {({k: v for k, v in missing.items() if v})}"
