"""One DPO round with TRL changes the policy: LoRA (reference = adapters off) and full weights
with an explicit frozen reference copy; KTO too (a Table 3 baseline)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from align_helpers import BAD, GOOD, PRESET, requests, sft_rows, tiny_model

from gqr_training.align.data import completion_text, make_task
from gqr_training.align.dpo import PrefOptions, kto_rows, train_preferences


def _pairs(n: int = 16) -> list[dict[str, Any]]:
    """Toy pairs: good aspects chosen, bad ones rejected (no generation needed)."""
    rows = []
    for r in requests(n, seed=5):
        task = make_task(PRESET, r)
        rows.append(
            {
                "prompt": task.prompt,
                "chosen": completion_text([f"{r.query} {a}" for a in GOOD]),
                "rejected": completion_text([f"{r.query} {a}" for a in BAD[:3]]),
            }
        )
    return rows


@pytest.mark.parametrize(("algo", "lora"), [("dpo", False), ("dpo", True), ("kto", False)])
def test_one_preference_round_changes_the_policy(tmp_path: Path, algo: str, lora: bool) -> None:
    torch.manual_seed(0)
    model, tok = tiny_model(sft_rows(40))
    rows = _pairs()
    if algo == "kto":
        rows = kto_rows(rows)
    before = copy.deepcopy(model.state_dict())
    opts = PrefOptions(
        algo=algo,
        lr=1e-2,
        epochs=1,
        batch_size=8,
        lora=lora,  # type: ignore[arg-type]
        progress=False,
    )
    trained, m = train_preferences(model, tok, rows, tmp_path, opts)
    assert m["train_loss"] == m["train_loss"]
    after = trained.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert not any(k.startswith("base_model") or "lora" in k for k in after)
