"""SFT with TRL lowers the completion loss and changes the weights (full and LoRA)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from testsupport.toyworld import sft_rows, tiny_model

from gqr_training.align.sft import SFTOptions, train_sft


@pytest.mark.parametrize("lora", [False, True])
def test_sft_lowers_loss_and_changes_params(tmp_path: Path, lora: bool) -> None:
    torch.manual_seed(0)
    rows = sft_rows(96)
    model, tok = tiny_model(rows)
    before = copy.deepcopy(model.state_dict())
    opts = SFTOptions(epochs=3, lr=3e-3, batch_size=16, lora=lora, progress=False, logging_steps=2)
    trained, m = train_sft(model, tok, rows, tmp_path, opts)
    assert m["last_loss"] < m["first_loss"]
    after = trained.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
