"""`blendbus serve`, `peer`, `relay` and `ready`: run the bus, connect a Blender to it, bridge a
stdio host to it, and check it answers."""

from __future__ import annotations

import argparse
import os
import sys

def cmd_serve(args: argparse.Namespace) -> int:
    from .. import eventloop
    from ..app import ServeOptions, serve
    from ..locks import default_state_dir
    from ..limits import Limits, set_limit

    limits = Limits(text_result_max_bytes=args.text_result_max_bytes,
                    inline_result_max_bytes=args.inline_result_max_bytes or None, task_after_s=args.task_after_s)
    try:
        for assignment in args.limits:
            set_limit(limits, assignment)
    except ValueError as exc:
        print(f"blendbus serve: {exc}", file=sys.stderr)
        return 2
    opts = ServeOptions(
        host=args.host, port=args.port, stdio=args.stdio, tokens=args.tokens,
        state_dir=args.state_dir or default_state_dir(), backend=args.backend,
        embedded_blender=args.embedded_blender, embedded_settings=args.embedded_set, limits=limits,
        allowed_hosts=args.allowed_hosts, allowed_origins=args.allowed_origins, trusted_proxies=args.trusted_proxies,
        tools=args.tools, oauth=args.oauth, public_url=args.public_url, oauth_user_claim=args.oauth_user_claim,
        oauth_client_id=args.oauth_client_id, oauth_audiences=args.oauth_audiences,
    )
    from ..backends.base import JobStoreError

    try:
        eventloop.run(serve(opts))
    except KeyboardInterrupt:
        pass
    except (ValueError, OSError, JobStoreError) as exc:
        print(f"blendbus serve: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 2
    return 0



def cmd_peer(args: argparse.Namespace) -> int:
    from ..locks import default_state_dir

    state_dir = args.state_dir or default_state_dir() / "peer"
    token = os.environ.get(args.token_env) if args.token_env else args.token
    settings: dict[str, str] = {}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"blendbus peer: --set takes KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        settings[key.strip()] = value
    os.environ.setdefault("BLENDER_USER_RESOURCES", str(state_dir / "blender-user"))
    if args.plugins:
        from blendbus_addon.declarations import PEER_PLUGINS_ENV, extra_plugins

        os.environ[PEER_PLUGINS_ENV] = ",".join(args.plugins)
        try:
            extra_plugins(os.environ[PEER_PLUGINS_ENV])
        except (ValueError, ImportError) as exc:
            print(f"blendbus peer: --plugin: {exc}", file=sys.stderr)
            return 2
    import importlib.util

    if importlib.util.find_spec("bpy") is None:
        print("blendbus peer needs Blender as a Python module: pip install 'blendbus[peer]' (bpy 5.0.1, Python 3.11)",
              file=sys.stderr)
        return 2
    try:
        import bpy  # noqa: F401 - loading it is the check: a system library it needs may be missing
    except (ImportError, OSError) as exc:
        from ..systemlibs import missing_library

        print(f"blendbus peer: {missing_library(exc) or f'Blender (bpy) does not load: {exc}'}", file=sys.stderr)
        return 2
    from blendbus_addon import headless
    return headless.main(server=args.server, token=token, uuid=args.uuid, settings=settings,
                         blend=args.blend, state_dir=state_dir,
                         parent_pid=os.getppid() if args.exit_with_parent else None)



def cmd_relay(args: argparse.Namespace) -> int:
    from .. import eventloop, relay

    try:
        eventloop.run(relay.relay(args.server, args.token))
    except KeyboardInterrupt:
        pass
    return 0



def cmd_ready(args: argparse.Namespace) -> int:
    from .. import eventloop

    return eventloop.run(_ready_async(args.server, args.timeout, args.peers, args.token))


async def _ready_async(servers: str, timeout: float, peers: int, token: str | None) -> int:
    """Wait until every server answers /healthz, then (with `peers`) until that many peers are on the bus."""
    import asyncio
    import time

    import httpx2

    from ..client import ConnectError, call, connect, server_urls

    deadline = time.monotonic() + timeout
    urls = server_urls(servers)
    async with httpx2.AsyncClient(timeout=2) as http:
        for url in urls:
            while True:
                try:
                    if (await http.get(url.rsplit("/mcp", 1)[0] + "/healthz")).json().get("ok"):
                        break
                except (httpx2.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    print(f"blendbus ready: {url} did not answer within {timeout:g}s (is `blendbus serve` starting"
                          " there? its own output says why not)", file=sys.stderr)
                    return 1
                await asyncio.sleep(0.1)
    while peers:
        try:
            async with connect(servers, token) as client:
                while len((await call(client, "blender_list_clients", {}))["clients"]) < peers:
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    await asyncio.sleep(0.2)
            return 0
        except ConnectError as exc:
            print(f"blendbus ready: {exc}", file=sys.stderr)
            return 2
        except TimeoutError:
            print(f"blendbus ready: fewer than {peers} Blender peers joined within {timeout:g}s", file=sys.stderr)
            return 1
    return 0
