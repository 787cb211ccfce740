"""The Python test peer: the addon's real transport, queue and executor, without Blender.

Handlers run in worker threads, `concurrency` at a time; preferences come from a dict. The peer
declares the installed plugins and the test plugin (`plugin.py`), or the `plugins` it is given.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from blendbus.plugins import PluginSet, load_plugins
from blendbus.protocol import POLL_WAIT_S
from blendbus_addon.declarations import Declarations
from blendbus_addon.executor import PlainRuntime
from blendbus_addon.peer import PeerCore
from blendbus_addon.transport import Connector


def _installed_and_testing() -> PluginSet:
    from . import plugin

    return load_plugins(extra=[("testing", plugin)])


class PythonPeer:
    def __init__(
        self,
        connect: Connector,
        *,
        uuid: str | None = None,
        settings: dict[str, Any] | None = None,
        concurrency: int = 8,
        poll_wait_s: float = POLL_WAIT_S,
        plugins: PluginSet | None = None,
    ) -> None:
        self.runtime = PlainRuntime({"allow_code_execution": True, **(settings or {})})
        self.core = PeerCore(
            connect, uuid=uuid or "py-" + secrets.token_hex(4), runtime=self.runtime,
            capabilities={"python_test_peer": True}, poll_wait_s=poll_wait_s,
            declarations=Declarations.of(plugins or _installed_and_testing()),
        )
        self.concurrency = concurrency
        self._offered = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        offer = self.core.queue.offer

        def on_payload(payload: dict[str, Any]) -> str | None:
            cancelled = offer(payload)
            self._offered.set()
            return cancelled

        self.core.link.on_payload = on_payload

    @property
    def uuid(self) -> str:
        return self.core.uuid

    @property
    def link(self) -> Any:
        return self.core.link

    async def start(self, timeout: float = 15.0) -> PythonPeer:
        self._tasks = [asyncio.ensure_future(self.core.link.run())]
        self._tasks += [asyncio.ensure_future(self._work()) for _ in range(self.concurrency)]
        await asyncio.wait_for(self._wait_connected(), timeout)
        return self

    async def _wait_connected(self) -> None:
        while self.core.link.state != "connected":
            if self._tasks[0].done():
                self._tasks[0].result()
            await asyncio.sleep(0.01)

    async def _work(self) -> None:
        while True:
            payload = self.core.queue.take(0)
            if payload is None:
                self._offered.clear()
                await self._offered.wait()
                continue
            await asyncio.to_thread(self.core.run_payload, payload, True)

    async def stop(self) -> None:
        """Leave cleanly: flush replies and unregister."""
        self.core.link.stop()
        if self._tasks:
            try:
                await asyncio.wait_for(asyncio.shield(self._tasks[0]), 10)
            except (TimeoutError, Exception):  # noqa: BLE001
                pass
        await self.kill()

    async def kill(self) -> None:
        """Vanish without a word, like a crashed Blender: stop polling and replying.

        Jobs still running on worker threads are cancelled, so no thread outlives the peer."""
        self.core.queue.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def __aenter__(self) -> PythonPeer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
