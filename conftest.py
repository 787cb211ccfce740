"""Shared by every test folder: async tests run on asyncio (the anyio pytest plugin)."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
