"""A real tiny causal LM folder for the harness tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testsupport.artifacts import build_random_gpt2

    return build_random_gpt2(tmp_path_factory.mktemp("tiny-lm"))
