"""Fixtures for the log store tests."""

from __future__ import annotations

from collections.abc import Iterator

import fsspec
import pytest


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh memory:// root, emptied afterwards (the memory filesystem is process-global)."""
    fs = fsspec.filesystem("memory")
    root = "memory://logstore-test"
    yield root
    if fs.exists("/logstore-test"):
        fs.rm("/logstore-test", recursive=True)
