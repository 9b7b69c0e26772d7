"""Shared fixtures. Tests are marked by folder: tests/unit -> unit, tests/integration ->
integration, tests/e2e -> e2e (select with ``-m``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_TESTS = Path(__file__).parent
# The operator re-checks each object every GQR_TICK_SECONDS; tests want quick drift repair.
os.environ.setdefault("GQR_TICK_SECONDS", "2")

pytest_plugins = ["tests.testenv_fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).relative_to(_TESTS)
        kind = rel.parts[0]
        if kind in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, kind))
