"""Where the server's time goes on sequential no-op round trips: cProfile of the server process.

    python -m bench.profile [--seconds 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from blendbus.client import connect

from blendbus import eventloop

from . import _procs


async def drive(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server, url = _procs.start_server(Path(tmp) / "state", profile_s=seconds + 6)
        peer = _procs.start_python_peer(url, "py-peer", 4)
        async with connect(url) as client:
            start, calls = time.perf_counter(), 0
            while time.perf_counter() - start < seconds:
                await client.call_tool("blender_test_noop", {})
                calls += 1
        print(f"{calls} no-op calls in {seconds:g} s: {seconds / calls * 1000:.2f} ms each")
        _procs.stop(peer)
        print(server.communicate(timeout=60)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    eventloop.run(drive(parser.parse_args().seconds))


if __name__ == "__main__":
    main()
