"""`blendbus serve --embedded-blender`: a headless Blender peer as a child process, kept alive.

The child is `blendbus peer` on the bpy module. It is restarted with backoff if it dies, and its
output goes to the server's stderr so it never mixes with an MCP stdio stream on stdout.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dispatch import Hub

EMBEDDED_UUID = "embedded-blender"
DEFAULT_SETTINGS = ("allow_code_execution=true",)
"""The embedded peer is the user's own sandbox Blender, started by the user's own server."""


STARTUP_WAIT_S = 60.0
"""How long calls wait for the embedded Blender to join before answering `no_client`."""


class EmbeddedBlender:
    def __init__(self, url: str, token: str | None, settings: list[str], state_dir: Path,
                 hub: Hub | None = None) -> None:
        self.url, self.token, self.state_dir, self.hub = url, token, state_dir, hub
        if hub is not None:
            hub.expect_peer("local", STARTUP_WAIT_S)
        self.settings = [*DEFAULT_SETTINGS, *settings]
        self.restarts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "blendbus", "peer", "--server", self.url, "--uuid", EMBEDDED_UUID,
               "--state-dir", str(self.state_dir / "embedded-peer"), "--exit-with-parent"]
        if self.token:
            cmd += ["--token-env", "BLENDBUS_EMBEDDED_TOKEN"]
        for item in self.settings:
            cmd += ["--set", item]
        return cmd

    async def run(self) -> None:
        if importlib.util.find_spec("bpy") is None:
            print("blendbus: --embedded-blender needs Blender as a Python module: pip install 'blendbus[peer]'"
                  " (bpy 5.0.1, Python 3.11)", file=sys.stderr, flush=True)
            if self.hub is not None:
                self.hub.expect_peer("local", 0)
            return
        import os

        env = dict(os.environ)
        if self.token:
            env["BLENDBUS_EMBEDDED_TOKEN"] = self.token
        backoff = 0.5
        while not self._stopping:
            started = time.monotonic()
            if self.hub is not None:  # calls made while it starts wait for it rather than fail
                self.hub.expect_peer("local", STARTUP_WAIT_S)
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=sys.stderr.fileno(), env=env)
            code = await self._proc.wait()
            if self._stopping:
                break
            self.restarts += 1
            print(f"blendbus: embedded Blender exited with {code}; restarting", file=sys.stderr, flush=True)
            backoff = 0.5 if time.monotonic() - started > 30 else min(backoff * 2, 10.0)
            await asyncio.sleep(backoff)

    async def stop(self, grace_s: float = 8.0) -> None:
        """Stop the child and wait for it: it must never outlive the server."""
        self._stopping = True
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
