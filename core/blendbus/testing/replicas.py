"""`blendbus serve` replicas as real processes on one backend, for tests and benchmarks."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
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
