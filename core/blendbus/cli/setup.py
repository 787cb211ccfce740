"""`blendbus addon build`, `install`, `new-plugin` and `token new`: what a person sets up once — the
add-on, a host's configuration, a plugin's skeleton, a bearer token."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

def cmd_addon(args: argparse.Namespace) -> int:
    from ..extension import build

    try:
        written = build(args.out, target_platform=args.platform)
    except (ValueError, RuntimeError) as exc:
        print(f"blendbus addon build: {exc}", file=sys.stderr)
        return 2
    for out in written:
        print(f"wrote {out} ({out.stat().st_size / 1024 / 1024:.1f} MiB)")
    print("install it in Blender (4.2 or newer): Edit > Preferences > Get Extensions > Install from Disk")
    return 0



def cmd_install(args: argparse.Namespace) -> int:
    from ..install import GENERIC, HOSTS, entry, install

    if args.token and not args.url:
        print("blendbus install: --token goes with --url (a local server needs none)", file=sys.stderr)
        return 2
    host = HOSTS.get(args.host)
    server = entry(host, url=args.url, token=args.token)
    if host is None or args.print_only:
        key = host.key if host else "mcpServers"
        print(json.dumps({key: {args.name: server}}, indent=2))
        if host is None and args.host != GENERIC:
            return 2
        return 0
    try:
        path = install(host, server, name=args.name, path=args.config)
    except (OSError, ValueError) as exc:
        print(f"blendbus install: {exc}", file=sys.stderr)
        return 2
    print(f"added {args.name!r} to {path} ({'a remote entry' if args.url else 'blendbus with its own Blender'});"
          f" restart {args.host} to load it. Its format: {host.documented}")
    return 0



def cmd_new_plugin(args: argparse.Namespace) -> int:
    from ..plugins import installed_plugins
    from ..scaffold import names, render

    taken = installed_plugins()
    dist = names(args.name)["__dist__"]
    if args.name in taken or dist in taken.values():
        print(f"blendbus new-plugin: a plugin named {args.name!r} is already installed ({taken.get(args.name, dist)});"
              " choose another name", file=sys.stderr)
        return 2
    dest = args.dir or Path(dist)
    try:
        files = render(args.name, dest)
    except ValueError as exc:
        print(f"blendbus new-plugin: {exc}", file=sys.stderr)
        return 2
    python = sys.executable  # this environment's Python: bare pip/pytest may be other ones, or none
    print(f"wrote {len(files)} files to {dest}. Next:\n  cd {dest}\n  {python} -m pip install -e '.[test]'\n"
          f"  {python} -m blendbus plugins\n  {python} -m pytest")
    return 0



def cmd_token(args: argparse.Namespace) -> int:
    from ..locks import default_state_dir
    from ..auth import add_token

    path = args.tokens or default_state_dir() / "tokens.json"
    try:
        if args.tools is not None:
            from ..testing.kit import make_server

            make_server().profile(args.tools, files=False)  # refuse a profile these plugins cannot serve
        token = add_token(path, args.user, args.role, args.tools)
    except ValueError as exc:
        print(f"blendbus token new: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(f"stored its sha256 for user {args.user!r}{f' (role {args.role})' if args.role else ''} in {path};"
          f" serve with --tokens {path}. The token is shown only now.", file=sys.stderr)
    return 0
