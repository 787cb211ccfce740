"""The `blendbus` command: `main` parses the verb (parser.py) and runs it. The verbs live by what a
person does with them: serving.py runs the bus and its peers, setup.py sets things up once, shell.py
looks at a bus and calls it from a shell."""

from __future__ import annotations

import os
import sys

from .parser import build_parser
from .serving import cmd_peer, cmd_ready, cmd_relay, cmd_serve
from .setup import cmd_addon, cmd_install, cmd_new_plugin, cmd_token
from .shell import cmd_call, cmd_plugins, cmd_tools

VERBS = {"serve": cmd_serve, "peer": cmd_peer, "addon": cmd_addon, "token": cmd_token, "new-plugin": cmd_new_plugin,
         "plugins": cmd_plugins, "tools": cmd_tools, "call": cmd_call, "install": cmd_install, "relay": cmd_relay,
         "ready": cmd_ready}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return VERBS[args.verb](args)
    except BrokenPipeError:  # `blendbus call ... | head`: the reader left; that is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
