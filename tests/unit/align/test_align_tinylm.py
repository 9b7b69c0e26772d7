"""The from-scratch tokenizer and model."""

from __future__ import annotations

from testsupport.toyworld import PRESET, requests, sft_rows, tiny_model

from gqr_serving.prompt import parse, render
from gqr_training.align import tinylm


def test_template_lines_become_single_tokens_and_completions_round_trip() -> None:
    rows = sft_rows(40)
    model, tok = tiny_model(rows)
    prompt = render(PRESET, requests(1)[0])
    assert len(tok(prompt)["input_ids"]) < len(prompt.split()) / 2
    completion = rows[0]["completion"]
    ids = tok(completion, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    assert parse(PRESET, tok.decode(ids)).queries == parse(PRESET, completion).queries
    assert tok.pad_token_id is not None and tok.eos_token_id is not None
    assert tinylm.n_params(model) < 5_000_000
