"""The peer's side of the bus protocol, over the official MCP client. bpy-free.

`PeerLink.run()` connects, registers, then keeps exactly one `blender_poll_jobs` call open and
posts replies from an outbox. Any failure (a dropped stream, a server restart) leads to a
reconnect with backoff and a re-registration under the same uuid; replies wait in the outbox
meanwhile, so a completed result is delivered late rather than lost.

`TransportThread` runs a PeerLink on its own asyncio loop in a background thread, which is how
Blender (GUI or headless) uses it: the main thread only ever touches the thread-safe queues.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from blendbus import protocol as p
from blendbus.client import ToolError, call, describe_error

log = logging.getLogger("blendbus.peer")

Connector = Callable[[], AbstractAsyncContextManager[Any]]
FLUSH_BATCH_BYTES = 1024 * 1024
"""Replies that accumulated while one post was in flight go out together, up to about this size."""
REPOLL_DELAY_S = 0.02
"""Longest a peer holds back its next poll while replies to just-received jobs go out."""
"""Opens an MCP client session to the server (HTTP, or in-memory in tests)."""


class Outbox:
    """Replies waiting to be posted. Thread-safe; wakes the transport's loop when filled."""

    def __init__(self) -> None:
        self._items: deque[tuple[dict[str, Any], int]] = deque()
        self._lock = threading.Lock()
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drained = asyncio.Event()
        self._drained_waiters = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._event = loop, asyncio.Event()
        if self._items:
            self._event.set()

    def put(self, item: dict[str, Any], size: int = 0) -> None:
        """Queue an update; `size` is its encoded result size, which bounds how much goes in one post."""
        with self._lock:
            self._items.append((item, size))
        loop, event = self._loop, self._event
        if loop is not None and event is not None:
            try:
                if _running_loop() is loop:
                    event.set()
                else:
                    loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop closed: the item waits for the next bind
                pass

    def peek(self) -> dict[str, Any] | None:
        with self._lock:
            return self._items[0][0] if self._items else None

    def batch(self, max_bytes: int) -> list[dict[str, Any]]:
        """The oldest items, as many as fit in about max_bytes (always at least one)."""
        out: list[dict[str, Any]] = []
        size = 0
        with self._lock:
            for item, item_size in self._items:
                size += item_size + 200
                if out and size > max_bytes:
                    break
                out.append(item)
        return out

    def pop(self, count: int = 1) -> None:
        with self._lock:
            for _ in range(min(count, len(self._items))):
                self._items.popleft()
            empty = not self._items
        if empty and self._drained_waiters:
            self._drained.set()

    async def drained(self, timeout: float) -> None:
        """Wait until something was queued and everything queued was posted, or `timeout`."""
        self._drained_waiters += 1
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._drained_waiters -= 1
            self._drained.clear()

    async def wait(self) -> None:
        assert self._event is not None
        while self.peek() is None:
            self._event.clear()
            if self.peek() is not None:
                break
            await self._event.wait()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class PeerLink:
    """One peer's connection to one server, kept alive until `stop()`."""

    def __init__(
        self,
        connect: Connector,
        *,
        uuid: str,
        describe: Callable[[], dict[str, Any]],
        on_payload: Callable[[dict[str, Any]], str | None],
        on_registered: Callable[[Any, dict[str, Any]], Awaitable[None]] | None = None,
        poll_wait_s: float = 20.0,
        backoff_max_s: float = 5.0,
    ) -> None:
        self.connect, self.uuid, self.describe = connect, uuid, describe
        self.on_payload, self.on_registered = on_payload, on_registered
        self.poll_wait_s, self.backoff_max_s = poll_wait_s, backoff_max_s
        self.outbox = Outbox()
        self.instance = secrets.token_hex(8)
        self.state = "disconnected"
        self.last_error = ""
        self.registrations = 0
        self.token = ""
        self.connected = asyncio.Event()
        self._stop: asyncio.Event | None = None

    # ---- used from any thread ----------------------------------------------------------------
    def reply(self, job_id: str, status: str, result: Any = None, error: str = "", size: int = 0) -> None:
        self.outbox.put({"job_id": job_id, "status": status, "result": result, "error": error}, size)

    def progress(self, job_id: str, fraction: float | None, message: str | None) -> None:
        self.outbox.put({"job_id": job_id, "status": p.RUNNING, "progress": fraction, "message": message})

    # ---- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        self._stop = asyncio.Event()
        self.connected = asyncio.Event()
        self.outbox.bind(asyncio.get_running_loop())
        backoff = 0.1
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.state = "connecting"
                async with self.connect() as client:
                    await self._register(client)
                    self.state, self.last_error = "connected", ""
                    self.connected.set()
                    await self._serve(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure means: reconnect
                self.last_error = describe_error(exc)
                log.warning("blendbus peer %s: connection lost (%s); reconnecting", self.uuid, self.last_error)
            finally:
                self.connected.clear()
                self.state = "disconnected"
            if self._stop.is_set():
                break
            if time.monotonic() - started > 10:
                backoff = 0.1
            try:
                await asyncio.wait_for(self._stop.wait(), backoff)
            except TimeoutError:
                pass
            backoff = min(self.backoff_max_s, backoff * 2)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _register(self, client: Any) -> None:
        info = self.describe()
        response = await call(client, "blender_register_client",
                              {"client_uuid": self.uuid, "instance": self.instance, **info})
        self.token = response["peer_token"]
        self.poll_wait_s = min(self.poll_wait_s, float(response.get("poll_wait_s", self.poll_wait_s)))
        self.registrations += 1
        if self.on_registered is not None:
            await self.on_registered(client, response)

    async def _serve(self, client: Any) -> None:
        stop = asyncio.ensure_future(self._stop.wait())  # type: ignore[union-attr]
        tasks = [asyncio.ensure_future(self._poll_forever(client)), asyncio.ensure_future(self._flush_forever(client))]
        try:
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop:
                    task.result()  # re-raise the failure that ended this connection
        finally:
            for task in [stop, *tasks]:
                task.cancel()
            await asyncio.gather(stop, *tasks, return_exceptions=True)
        if self._stop.is_set():  # type: ignore[union-attr]
            await self._goodbye(client)

    async def _goodbye(self, client: Any) -> None:
        """Flush what is left and leave the bus cleanly, within a short deadline."""
        try:
            async with asyncio.timeout(5):
                await self._flush(client)
                await call(client, "blender_unregister_client", {"client_uuid": self.uuid, "peer_token": self.token})
        except Exception:  # noqa: BLE001 - shutting down either way
            pass

    async def _poll_forever(self, client: Any) -> None:
        ack: list[str] = []
        while True:
            args = {"client_uuid": self.uuid, "peer_token": self.token, "ack": ack, "wait_s": self.poll_wait_s}
            async with asyncio.timeout(self.poll_wait_s + 30):
                response = await call(client, "blender_poll_jobs", args)
            payloads = response.get("payloads", [])
            ack = [p.ack_key(payload) for payload in payloads]
            for payload in payloads:
                cancelled = self.on_payload(payload)
                if cancelled is not None:
                    self.reply(cancelled, p.CANCELLED, error="cancelled before it started")
            if payloads:
                # Let quick jobs' replies go out before the next poll: the reply is what a caller
                # waits for, and the server handles one request at a time. Capped, so a long job
                # never keeps the peer from polling (and from looking alive).
                await self.outbox.drained(REPOLL_DELAY_S)

    async def _flush_forever(self, client: Any) -> None:
        while True:
            await self.outbox.wait()
            await self._flush(client)

    async def _flush(self, client: Any) -> None:
        """Post everything in the outbox: one request for one update, a batch for several."""
        while batch := self.outbox.batch(FLUSH_BATCH_BYTES):
            args = {"client_uuid": self.uuid, "peer_token": self.token}
            # A PeerAuthError (the server restarted and forgot us) propagates: reconnect,
            # re-register, then post the same items again.
            if len(batch) == 1:
                try:
                    await call(client, "blender_job_update", {**args, **batch[0]})
                except ToolError as exc:
                    if exc.code == "PeerAuthError":
                        raise
                    self._refused(batch[0], str(exc))
            else:
                response = await call(client, "blender_job_updates", {**args, "updates": batch})
                for answer in response["answers"]:
                    if "error" in answer:
                        self._refused(answer, answer["error"])
            self.outbox.pop(len(batch))

    def _refused(self, item: dict[str, Any], why: str) -> None:
        # The server will never accept this update (a job never sent here, or not ours): drop it.
        log.warning("blendbus peer %s: update for %s refused: %s", self.uuid, item.get("job_id"), why)


class TransportThread:
    """Runs a PeerLink on a private asyncio loop in a daemon thread."""

    def __init__(self, link: PeerLink) -> None:
        self.link = link
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name=f"blendbus-peer-{link.uuid}", daemon=True)
        self._ready = threading.Event()

    def start(self) -> TransportThread:
        self._thread.start()
        self._ready.wait(5)
        return self

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._ready.set()
        try:
            self._loop.run_until_complete(self.link.run())
        finally:
            self._loop.close()

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.link.state == "connected":
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self.link.stop)
            except RuntimeError:
                pass
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
