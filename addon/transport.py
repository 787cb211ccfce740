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

from blendbus import eventloop, paging
from blendbus import protocol as p
from blendbus.client import ConnectError, ToolError, call, describe_error, post_result, root_cause

log = logging.getLogger("blendbus.peer")

Connector = Callable[[], AbstractAsyncContextManager[Any]]
"""Opens an MCP client session to the server (HTTP, or in-memory in tests)."""
FLUSH_BATCH_BYTES = 1024 * 1024
"""Replies that accumulated while one post was in flight go out together, up to about this size."""
POLL_CARRY_BYTES = 64 * 1024
"""Replies up to about this much in total travel on the next poll; the server keeps a poll's request
in memory while the poll is held open, so anything larger is posted in a request of its own."""
REPOLL_DELAY_S = 0.02
"""Longest a peer holds back its next poll so that quick jobs' replies can ride on it."""
FATAL_STATUSES = frozenset({401, 403, 404, 405, 421})
"""HTTP answers that retrying cannot change (a wrong token or URL): the peer stops and says why."""
REFUSED = "refused"
"""The link's state after such an answer."""


class Outbox:
    """Replies waiting to be posted. Thread-safe; wakes the transport's loop when filled."""

    def __init__(self) -> None:
        self._items: deque[tuple[dict[str, Any], int]] = deque()
        self._lock = threading.Lock()
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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

    def take(self, max_bytes: int, at_least_one: bool = True) -> list[tuple[dict[str, Any], int]]:
        """Claim the oldest items, as many as fit in about max_bytes (and at least one, unless told
        otherwise); `restore` them if they could not be posted. A claimed item is invisible to other
        senders."""
        out: list[tuple[dict[str, Any], int]] = []
        size = 0
        with self._lock:
            while self._items:
                size += self._items[0][1] + 200
                if (out or not at_least_one) and size > max_bytes:
                    break
                out.append(self._items.popleft())
        return out

    def restore(self, items: list[tuple[dict[str, Any], int]]) -> None:
        """Put claimed items back at the front, in order (their post failed)."""
        with self._lock:
            self._items.extendleft(reversed(items))

    async def wait(self, count: int = 1) -> None:
        """Until at least `count` items are waiting."""
        assert self._event is not None
        while len(self) < count:
            self._event.clear()
            if len(self) >= count:
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
        poll_wait_s: float = p.POLL_WAIT_S,
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
        self._poll_open = False
        self._posts_results = True
        self.connected = asyncio.Event()
        self._stop: asyncio.Event | None = None
        self._changes: set[str] = set()
        self._changes_pending = False
        self._changes_lock = threading.Lock()
        self._changes_added = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- used from any thread ----------------------------------------------------------------
    def reply(self, job_id: str, status: str, result: Any = None, error: str = "", size: int = 0,
              scene: dict[str, Any] | None = None) -> None:
        update = {"job_id": job_id, "status": status, "result": result, "error": error}
        if scene is not None:
            update[p.SCENE_FIELD] = scene
        self.outbox.put(update, size)

    def progress(self, job_id: str, fraction: float | None, message: str | None, level: str | None = None) -> None:
        """A running job's progress, or with `level` a log line for its caller (jobqueue.Report)."""
        update = {"job_id": job_id, "status": p.RUNNING, "progress": fraction, "message": message}
        if level is not None:
            update[p.LEVEL_FIELD] = level
        self.outbox.put(update)

    def ask(self, job_id: str, question: dict[str, Any]) -> None:
        """A running job's question for the person behind its callers (jobqueue.Asker)."""
        self.outbox.put({"job_id": job_id, "status": p.RUNNING, p.ASK_FIELD: question})

    def scene_changed(self, names: set[str]) -> None:
        """The scene changed (these objects): tell the server, which notifies resource subscribers."""
        with self._changes_lock:
            self._changes |= names
            self._changes_pending = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._changes_added.set)

    # ---- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        self._stop = asyncio.Event()
        self.connected = asyncio.Event()
        self._changes_added = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.outbox.bind(self._loop)
        backoff = 0.1
        waiting = False  # said once that the uuid is still held by this peer's previous process
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
            except ConnectError as exc:
                self.last_error = str(exc)
                if exc.status in FATAL_STATUSES:  # retrying cannot help: say so once and stop
                    log.error("blendbus peer %s: %s", self.uuid, exc)
                    self._stop.set()
                else:
                    log.warning("blendbus peer %s: %s; reconnecting", self.uuid, self.last_error)
            except Exception as exc:  # noqa: BLE001 - every other failure means: reconnect
                self.last_error = describe_error(exc)
                cause = root_cause(exc)
                if isinstance(cause, ToolError) and cause.code == "PeerAuthError" and not self.registrations:
                    if not waiting:  # our uuid is still held by this peer's previous process: say so once
                        log.warning("blendbus peer %s: %s; waiting for it", self.uuid, cause)
                    waiting = True
                else:
                    log.warning("blendbus peer %s: connection lost (%s); reconnecting", self.uuid, self.last_error)
            finally:
                self.connected.clear()
                self.state = REFUSED if self._stop.is_set() and self.last_error else "disconnected"
            if self._stop.is_set():
                break
            if (task := asyncio.current_task()) is not None and task.cancelling():
                # A cancel that landed while the HTTP client failed to connect can surface as that failure
                # (anyio's task groups keep the error, not the cancel): it still ends the link.
                raise asyncio.CancelledError
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
        response = await call(client, p.REGISTER,
                              {"client_uuid": self.uuid, "instance": self.instance, **info})
        self.token = response["peer_token"]
        self._posts_results = True  # until this server turns out not to take them
        self.poll_wait_s = min(self.poll_wait_s, float(response.get("poll_wait_s", self.poll_wait_s)))
        self.registrations += 1
        if self.on_registered is not None:
            await self.on_registered(client, response)

    async def _serve(self, client: Any) -> None:
        stop = asyncio.ensure_future(self._stop.wait())  # type: ignore[union-attr]
        tasks = [asyncio.ensure_future(self._poll_forever(client)), asyncio.ensure_future(self._flush_forever(client)),
                 asyncio.ensure_future(self._changes_forever(client))]
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
                await call(client, p.UNREGISTER, {"client_uuid": self.uuid, "peer_token": self.token})
        except Exception:  # noqa: BLE001 - shutting down either way
            pass

    async def _poll_forever(self, client: Any) -> None:
        ack: list[str] = []
        while True:
            args = {"client_uuid": self.uuid, "peer_token": self.token, "ack": ack, "wait_s": self.poll_wait_s}
            # Small replies ready now ride on this poll: one request instead of two per job. Large
            # ones go out on their own, so the server is not left holding them for a whole poll.
            carried = self.outbox.take(POLL_CARRY_BYTES, at_least_one=False) if self.outbox.peek() is not None else []
            if carried:
                args["replies"] = [item for item, _ in carried]
            self._poll_open = True
            try:
                async with asyncio.timeout(self.poll_wait_s + 30):
                    response = await call(client, p.POLL, args)
            except BaseException:
                self.outbox.restore(carried)
                raise
            finally:
                self._poll_open = False
            self._refused_answers(response.get("answers", []))
            payloads = response.get("payloads", [])
            ack = [p.ack_key(payload) for payload in payloads]
            for payload in payloads:
                cancelled = self.on_payload(payload)
                if cancelled is not None:
                    self.reply(cancelled, p.CANCELLED, error="cancelled before it started")
            self._keep_unstored(carried, response.get("answers", []))
            if payloads:
                # Quick jobs answer within a few ms: wait briefly so all their replies ride on the
                # next poll, one request for the batch. Capped, so a long job never keeps the peer
                # from polling (and looking alive); replies that come later go out on their own.
                try:
                    await asyncio.wait_for(self.outbox.wait(len(payloads)), REPOLL_DELAY_S)
                except TimeoutError:
                    pass

    async def _flush_forever(self, client: Any) -> None:
        """Post replies that arrive while a long poll is open; between polls, the next poll carries them."""
        while True:
            await self.outbox.wait()
            if self._poll_open:
                await self._flush(client)
            else:
                await asyncio.sleep(0.005)

    async def _changes_forever(self, client: Any) -> None:
        """Report scene changes, at most every SCENE_EVENT_EVERY_S (a burst of edits is one event)."""
        while True:
            await self._changes_added.wait()
            self._changes_added.clear()
            with self._changes_lock:
                names, pending = sorted(self._changes), self._changes_pending
                self._changes, self._changes_pending = set(), False
            if pending:
                many = len(names) > p.MAX_CHANGED_NAMES
                await call(client, p.SCENE_CHANGED_TOOL, {
                    "client_uuid": self.uuid, "peer_token": self.token,
                    "objects": [] if many else names, "all": many})
            await asyncio.sleep(p.SCENE_EVENT_EVERY_S)

    async def _flush(self, client: Any) -> None:
        """Post everything in the outbox: one request for one update, a batch for several."""
        while claimed := self.outbox.take(FLUSH_BATCH_BYTES):
            batch = [item for item, _ in claimed]
            args = {"client_uuid": self.uuid, "peer_token": self.token}
            # A failure (a dropped stream; a PeerAuthError after a server restart) puts the items
            # back and propagates: reconnect, re-register, then post the same items again.
            try:
                if len(batch) == 1:
                    try:
                        answers = [await self._post_one(client, args, batch[0], claimed[0][1])]
                    except ToolError as exc:
                        if exc.code in ("PeerAuthError", p.STORE_FAILED):
                            raise
                        self._refused_answers([{**batch[0], "error": str(exc)}])
                        continue
                else:
                    answers = (await call(client, p.UPDATES, {**args, "updates": batch}))["answers"]
                    self._refused_answers(answers)
            except BaseException:
                self.outbox.restore(claimed)
                raise
            self._keep_unstored(claimed, answers)

    async def _post_one(self, client: Any, args: dict[str, Any], update: dict[str, Any], size: int) -> dict[str, Any]:
        """One update, as a tool call; a large result is posted raw instead (protocol.RESULTS_PATH), where
        the server takes it without either side encoding it into JSON-RPC."""
        if size >= p.UPLOAD_MIN_BYTES and self._posts_results:
            result = update["result"]
            try:
                text = paging.result_text(result).encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate, which only JSON can carry
                text = None
            if text is not None:
                head = {**args, **{k: v for k, v in update.items() if k != "result"},
                        "result_format": paging.result_format(result)}
                answer = await post_result(client, head, text)
                if answer is not None:
                    return answer
                self._posts_results = False  # an older server: tool calls from now on
        return {**await call(client, p.UPDATE, {**args, **update}), "job_id": update["job_id"]}

    def _keep_unstored(self, claimed: list[tuple[dict[str, Any], int]], answers: list[dict[str, Any]]) -> None:
        """Updates the server took but could not store (`persisted: false`: its store failed after the
        callers heard) go back in the outbox and the link reconnects, to send them again: the job's
        record must end too, or it would stay open for ever."""
        unstored = {str(a.get("job_id")) for a in answers if a.get("persisted") is False}
        if unstored:
            self.outbox.restore([entry for entry in claimed if str(entry[0].get("job_id")) in unstored])
            raise StoreUnavailable(f"the server could not store the updates of {', '.join(sorted(unstored))}")

    def _refused_answers(self, answers: list[dict[str, Any]]) -> None:
        # The server will never accept these updates (a job never sent here, or not ours): drop them.
        for answer in answers:
            if "error" in answer:
                log.warning("blendbus peer %s: update for %s refused: %s", self.uuid, answer.get("job_id"),
                            answer["error"])


class StoreUnavailable(RuntimeError):
    """The server's store kept none of some updates: they are sent again after reconnecting."""


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
        self._loop = eventloop.new_event_loop()
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
