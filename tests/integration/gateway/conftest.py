"""Gateway tests run their async tests (``pytestmark = pytest.mark.anyio``) on asyncio."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
