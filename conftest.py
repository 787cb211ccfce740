"""Shared by every test folder: async tests run on asyncio (the anyio pytest plugin), and a run
whose threads would keep the interpreter from exiting fails instead of hanging."""

import faulthandler
import os
import sys
import threading

import pytest

EXIT_GRACE_S = 120.0
"""How long the interpreter may take to exit after the summary before the run is failed."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Python joins every non-daemon thread before it exits: one stuck in a test's leftover work (a
    handler waiting for an answer nobody will send) would hang the run until CI's own limit and hide
    which test left it. A daemon watchdog outlives that join: past the grace it prints every thread's
    stack and ends the process with a failure."""

    def stuck() -> None:
        print(f"\nthe test process did not exit within {EXIT_GRACE_S:g} s of its summary; threads left:",
              file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(1)

    watchdog = threading.Timer(EXIT_GRACE_S, stuck)
    watchdog.daemon = True
    watchdog.start()
