from __future__ import annotations

import pytest

from blendbus.testing import plugin as testing_plugin


@pytest.fixture
def blendbus_extra_plugins() -> list[tuple[str, object]]:
    return [("testing", testing_plugin)]
