"""A TCP proxy that counts round trips: how many times a client spoke after hearing back.

Put between a server and its Redis, it counts what redis-py really does on the wire: a pipeline is
one round trip however many commands it carries, a script one however many commands it runs. It
runs on a thread of its own, so the bench's blocking helpers (waiting for a peer to start) do not
stall what it forwards."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType


class TurnCounter:
    """Forwards 127.0.0.1:`port` to `target_port`; `turns` counts client turns over every connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.turns = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _connection(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        heard_back = [True]  # the client's first bytes are a turn

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, from_client: bool) -> None:
            try:
                while data := await src.read(1 << 16):
                    if from_client and heard_back[0]:
                        self.turns += 1
                    heard_back[0] = not from_client
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(client_r, server_w, True), pipe(server_r, client_w, False), return_exceptions=True)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        async with server:
            await self._stop.wait()

    def __enter__(self) -> TurnCounter:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
