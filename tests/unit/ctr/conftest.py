from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    # Two shared cores: one thread per process avoids oversubscription stalls.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.unit.ctr.synth import train_tiny_artifact

    return train_tiny_artifact(tmp_path_factory.mktemp("ctr-artifact"))
