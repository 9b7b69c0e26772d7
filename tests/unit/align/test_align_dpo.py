"""One DPO round with TRL changes the policy: LoRA (reference = adapters off) and full weights
with an explicit frozen reference copy; KTO too (a Table 3 baseline)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from testsupport.toyworld import BAD, GOOD, PRESET, requests, sft_rows, tiny_model

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


def _logp(model: Any, tok: Any, prompt: str, completion: str) -> float:
    ids = tok(prompt + completion, return_tensors="pt", return_token_type_ids=False).input_ids
    n = len(tok(prompt, return_token_type_ids=False).input_ids)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
    return float(logits[n - 1 :].gather(1, ids[0, n:, None]).sum())


def test_sft_term_keeps_the_chosen_likelihood_up(tmp_path: Path) -> None:
    """Pure DPO at a high rate lowers chosen and rejected together; the NLL term (RPO) holds
    the chosen response's likelihood up while the margin still grows."""
    rows = _pairs()
    got = {}
    for w in (0.0, 1.0):
        torch.manual_seed(0)
        model, tok = tiny_model(sft_rows(40))
        opts = PrefOptions(lr=2e-2, epochs=3, batch_size=8, sft_weight=w, progress=False)
        trained, _ = train_preferences(model, tok, rows, tmp_path / str(w), opts)
        trained.eval()
        got[w] = [
            tuple(_logp(trained, tok, r["prompt"], r[k]) for k in ("chosen", "rejected"))
            for r in rows[:6]
        ]
    chosen = {w: sum(c for c, _ in v) for w, v in got.items()}
    assert chosen[1.0] > chosen[0.0]
    assert all(c > r for c, r in got[1.0])
