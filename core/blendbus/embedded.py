"""`blendbus serve --embedded-blender`: a headless Blender peer as a child process, kept alive.

The child is `blendbus peer` on the bpy module. It is restarted with backoff if it dies. Its output
goes to the server's stderr (never into an MCP stdio stream on stdout) and to a log file in the state
dir. A child that dies before it connects has failed to start: until one starts, calls answer
`no_client` at once, with the reason (its last words) and the log file, instead of waiting for it.
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

    @property
    def log_path(self) -> Path:
        return self.state_dir / "embedded-peer" / "blender.log"

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
            await self._failed("--embedded-blender needs Blender as a Python module, which is not installed here:"
                               " pip install 'blendbus[peer]' (bpy 5.0.1, on Python 3.11); or connect a GUI Blender")
            return
        import os

        env = dict(os.environ)
        if self.token:
            env["BLENDBUS_EMBEDDED_TOKEN"] = self.token
        backoff = 0.5
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        while not self._stopping:
            started = time.monotonic()
            if self.hub is not None and not self.hub.peer_failure("local"):  # calls wait for it rather than fail
                self.hub.expect_peer("local", STARTUP_WAIT_S)
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=env)
            connected, last = await self._follow(self._proc)
            code = await self._proc.wait()
            if self._stopping:
                break
            self.restarts += 1
            if not connected:
                await self._failed(f"the embedded Blender did not start (exit {code}): {last or 'no output'};"
                                   f" its log: {self.log_path}")
            print(f"blendbus: embedded Blender exited with {code}; restarting", file=sys.stderr, flush=True)
            backoff = 0.5 if time.monotonic() - started > 30 else min(backoff * 2, 10.0)
            await asyncio.sleep(backoff)

    async def _follow(self, proc: asyncio.subprocess.Process) -> tuple[bool, str]:
        """Copy the child's output to stderr and the log; whether it connected, and its last line."""
        connected, last = False, ""
        assert proc.stdout is not None
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {' '.join(self.command()[2:5])}\n")
            async for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                print(line, file=sys.stderr, flush=True)
                log.write(line + "\n")
                log.flush()
                if line.strip():
                    last = line.strip()
                if not connected and f"peer {EMBEDDED_UUID} connected" in line:
                    connected = True
                    if self.hub is not None:
                        await self.hub.peer_started("local")
        return connected, last[:500]

    async def _failed(self, reason: str) -> None:
        print(f"blendbus: {reason}", file=sys.stderr, flush=True)
        if self.hub is not None:
            await self.hub.peer_failed("local", reason)

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
