"""`blendbus serve` replicas as real processes on one backend, for tests and benchmarks."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SERVING = re.compile(r"blendbus serving (http://\S+/mcp)")


@dataclass
class Replica:
    """One `blendbus serve` process."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone, as when a machine dies."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_replica(backend: str, state_dir: Path, *args: str, timeout: float = 30.0) -> Replica:
    """Start `blendbus serve --backend BACKEND --port 0` and wait until it serves; extra `args` go to serve."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "blendbus", "serve", "--port", "0", "--backend", backend,
                                 "--state-dir", str(state_dir), *args], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _SERVING.search(log.read_text(errors="replace"))
        if found:
            return Replica(proc, found.group(1), log)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"blendbus serve did not start: {log.read_text(errors='replace')}")


NGINX_CONF = Path(__file__).resolve().parents[3] / "docs" / "deploy" / "nginx.conf"
"""The nginx configuration the deployment guide gives: tests run exactly that file."""


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@contextmanager
def nginx_in_front(replicas: list[Replica], workdir: Path) -> Iterator[str]:
    """docs/deploy/nginx.conf, its ports filled in, in front of `replicas`; yields the /mcp URL clients use."""
    port = free_port()
    upstreams = "\n        ".join(f"server {r.url.split('/')[2]} max_fails=1 fail_timeout=5s;" for r in replicas)
    conf = NGINX_CONF.read_text().replace("{upstreams}", upstreams).replace("{listen}", str(port))
    (workdir / "nginx.conf").write_text(f"pid {workdir}/nginx.pid;\nerror_log {workdir}/nginx.log;\n"
                                        + conf.replace("http {", f"http {{\n    client_body_temp_path {workdir};", 1))
    nginx = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"])
    try:
        for _ in range(200):
            if nginx.poll() is not None:
                raise RuntimeError(f"nginx did not start: {(workdir / 'nginx.log').read_text(errors='replace')}")
            if answers(port):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        nginx.terminate()
        nginx.wait(10)
