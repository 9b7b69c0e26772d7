"""Shared fixtures. Tests are marked by folder: tests/unit -> unit, tests/integration ->
integration, tests/e2e -> e2e (select with ``-m``)."""

from __future__ import annotations

from pathlib import Path

import pytest

_TESTS = Path(__file__).parent

pytest_plugins = ["tests.testenv_fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).relative_to(_TESTS)
        kind = rel.parts[0]
        if kind in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, kind))
