"""The in-process sampler: one prefill per text shared by its samples, left padding, stops."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from testsupport.toyworld import PRESET, requests, sft_rows, tiny_model

from gqr_training.align.data import make_task
from gqr_training.align.generate import HFEngine, next_query_candidates


def _model() -> tuple[Any, Any]:
    torch.manual_seed(0)
    return tiny_model(sft_rows(40))


def _texts(n: int) -> list[str]:
    # Prompts of different lengths, so the batch is left-padded.
    tasks = [make_task(PRESET, r) for r in requests(n, seed=3)]
    return [t.prompt + ("word " * (i % 3)) for i, t in enumerate(tasks)]


@pytest.mark.parametrize(
    ("stop_at_sep", "batch_size"),
    [(False, 64), (True, 64), (True, 6)],  # 6 // 3 samples: 2 texts per batch, by length
)
def test_greedy_samples_equal_transformers_generate_on_a_padded_batch(
    stop_at_sep: bool, batch_size: int
) -> None:
    model, tok = _model()
    texts = _texts(5)
    texts[1] += "word " * 9  # the longest text is not last: length order != input order
    engine = HFEngine(model, tok, batch_size=batch_size)
    got = engine.complete(texts, 3, 0.0, 12, stop_at_sep=stop_at_sep)
    assert [len(x) for x in got] == [3] * 5
    assert all(len(set(x)) == 1 for x in got)  # greedy: the 3 copies of one prefill agree
    stops = [tok.eos_token_id, *(tok.convert_tokens_to_ids(["<SEP>"]) if stop_at_sep else [])]
    for text, samples in zip(texts, got, strict=True):
        enc = tok([text], return_tensors="pt", return_token_type_ids=False)
        ref = model.generate(
            **enc,
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=stops,
            pad_token_id=tok.pad_token_id,
        )
        want = tok.decode(ref[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        assert samples[0] == want.strip()


def test_mixed_temperatures_and_stop_at_sep() -> None:
    model, tok = _model()
    texts = _texts(4)
    engine = HFEngine(model, tok, batch_size=8, seed=1)  # 8 // 4 samples: 2 texts per batch
    got = engine.complete_mixed(texts, [0.0, 0.0, 1.0, 1.5], 10, stop_at_sep=True)
    assert [len(x) for x in got] == [4] * 4
    assert all(samples[0] == samples[1] for samples in got)  # both greedy
    assert any(samples[2] != samples[3] for samples in got)
    cands = next_query_candidates(engine, texts, 5, (0.7, 1.0), 10)
    assert [len(c) for c in cands] == [5] * 4
    assert all("<SEP>" not in q for c in cands for q in c)


def test_sampling_is_reproducible_per_seed_and_varies_across_seeds() -> None:
    model, tok = _model()
    texts = _texts(3)
    a = HFEngine(model, tok, seed=4).complete(texts, 6, 1.2, 10, False)
    b = HFEngine(model, tok, seed=4).complete(texts, 6, 1.2, 10, False)
    c = HFEngine(model, tok, seed=5).complete(texts, 6, 1.2, 10, False)
    assert a == b
    assert a != c


def test_top_p_applies_the_gateways_nucleus_filter() -> None:
    """An evaluation engine samples as the gateway serves (temperature, then top-p): with a
    nucleus this small only the most likely token survives, i.e. greedy decoding."""
    model, tok = _model()
    texts = _texts(4)
    greedy = HFEngine(model, tok).complete(texts, 2, 0.0, 10, False)
    nucleus = HFEngine(model, tok, seed=9, top_p=1e-6).complete(texts, 2, 1.5, 10, False)
    plain = HFEngine(model, tok, seed=9).complete(texts, 2, 1.5, 10, False)
    assert nucleus == greedy
    assert plain != greedy  # at temperature 1.5 without top-p the samples wander
    with pytest.raises(ValueError, match=r"top_p=0\.0 \(accepted: 0 < top_p <= 1\)"):
        HFEngine(model, tok, top_p=0.0)
