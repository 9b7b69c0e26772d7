"""Gateway tests run their async tests (``pytestmark = pytest.mark.anyio``) on asyncio."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A real random-init 2-layer GPT-2 with a BPE tokenizer trained on the spot."""
    from testsupport.artifacts import build_random_gpt2

    return build_random_gpt2(tmp_path_factory.mktemp("tiny-lm"))
