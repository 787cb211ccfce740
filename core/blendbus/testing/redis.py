"""A real Redis for tests and benchmarks: the one at 127.0.0.1:6379 when it answers, else a
`redis-server` started here on a free port (no persistence). Each user of it gets a key prefix of
its own and removes its keys afterwards, so other data on a shared Redis is never touched."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(own: bool = False) -> Iterator[str]:
    """The URL of a Redis to use: the machine's, or (when none answers, or `own`: a benchmark counting
    commands wants nobody else's) one started for the duration."""
    if not own and _answers(6379):
        yield DEFAULT_URL
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no Redis answers at 127.0.0.1:6379 and redis-server is not installed:"
                           " scripts/bootstrap.sh installs it (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="blendbus-redis-") as workdir:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if _answers(port):
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"redis-server did not start on port {port}")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def fresh_prefix(label: str = "test") -> str:
    return f"blendbus-{label}-{secrets.token_hex(4)}"


def with_prefix(url: str, prefix: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


def remove_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix` (what one test or run wrote); returns how many."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
        return len(keys)
    finally:
        client.close()
