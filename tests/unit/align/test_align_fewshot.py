"""Few-shot prompting of a base model (Table 3's first row): the unlabelled corpus the tiny base
LM is pretrained on, the demonstrations, how they are fitted into the context, and a real
pretraining run (TRL SFTTrainer on text rows) on a tiny LM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from testsupport.toyworld import PRESET, requests, sft_rows, tiny_model

from gqr_serving.prompt import SEP
from gqr_training.align import fewshot as fs
from gqr_training.align.data import make_task


@dataclass
class Q:
    query: str


def test_corpus_flattens_sessions_in_typed_order_and_dedups_answers() -> None:
    sessions = [
        ("s1", [Q("green tea"), Q("green tea benefits"), Q("green tea prices")]),
        ("s2", [Q("roth ira")]),  # a single query says nothing about what comes next
        ("s3", [Q("gre test"), Q("gre test prep")]),
    ]
    answers = ["Green tea is a drink.", "Green tea is a drink.", " ", "Roth IRA rules."]
    c = fs.base_corpus(sessions, answers, seed=1)
    assert sorted(c.lines) == sorted(
        [
            f"green tea {SEP} green tea benefits {SEP} green tea prices",
            f"gre test {SEP} gre test prep",
            "Green tea is a drink.",
            "Roth IRA rules.",
        ]
    )
    assert (c.sessions, c.answers) == (2, 2)


def test_corpus_caps_lines_and_names_empty_logs() -> None:
    sessions = [(f"s{i}", [Q(f"topic {i}"), Q(f"topic {i} prices")]) for i in range(100)]
    c = fs.base_corpus(sessions, [f"answer {i}" for i in range(100)], max_lines=40)
    assert len(c.lines) == 40 and c.sessions == 30 and c.answers == 10
    with pytest.raises(ValueError, match="no session of 2\\+ queries"):
        fs.base_corpus([("s", [Q("only one")])], [])


def test_demonstrations_are_prompt_plus_completion() -> None:
    rows = sft_rows(10)
    demos = fs.demonstrations(rows, 3, seed=0)
    assert len(demos) == 3
    by_text = {r["prompt"] + r["completion"] + fs.DEMO_SEPARATOR for r in rows}
    assert set(demos) <= by_text
    with pytest.raises(ValueError, match="k=0"):
        fs.demonstrations(rows, 0)
    with pytest.raises(ValueError, match="2 annotated rows for k=3"):
        fs.demonstrations(rows[:2], 3)


def test_fewshot_tasks_keep_the_nearest_demonstrations_that_fit() -> None:
    rows = sft_rows(40)
    _, tok = tiny_model(rows)
    tasks = [make_task(PRESET, r) for r in requests(5, seed=3)]
    demos = fs.demonstrations(rows, 3, seed=0)

    def n(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    roomy, fit = fs.fewshot_tasks(tasks, demos, tok, max_tokens=4096)
    assert fit == 3.0
    for t, f in zip(tasks, roomy, strict=True):
        assert f.prompt == "".join(demos) + t.prompt
        assert (f.request, f.n_queries, f.component) == (t.request, t.n_queries, t.component)
    # Room for the prompt, the answer and exactly one demonstration: the last (nearest) one.
    longest = max(n(t.prompt) for t in tasks)
    one = longest + 48 + max(n(d) for d in demos)
    tight, fit = fs.fewshot_tasks(tasks, demos, tok, max_tokens=one)
    assert 1.0 <= fit < 3.0
    for t, f in zip(tasks, tight, strict=True):
        assert f.prompt.endswith(demos[-1] + t.prompt)
        assert n(f.prompt) + 48 <= one
    bare, fit = fs.fewshot_tasks(tasks, demos, tok, max_tokens=longest + 48)
    assert fit == 0.0 and [b.prompt for b in bare] == [t.prompt for t in tasks]


def test_pretrained_base_is_a_fresh_model_of_the_same_shape_that_learned_the_text(
    tmp_path: Path,
) -> None:
    import torch

    from gqr_training.align.sft import SFTOptions

    rows = sft_rows(60)
    like, tok = tiny_model(rows)
    sessions = [
        (f"s{i}", [Q(r.query), Q(f"{r.query} prices"), Q(f"{r.query} reviews")])
        for i, r in enumerate(requests(200, seed=5))
    ]
    corpus = fs.base_corpus(sessions, [r.side_info.ai_response for r in requests(50)])
    opts = SFTOptions(epochs=4, lr=3e-3, batch_size=16, progress=False, logging_steps=2)
    base, m = fs.pretrain_base(tok, like, corpus, tmp_path / "base", opts)
    assert base.config.to_dict()["hidden_size"] == like.config.hidden_size
    assert base is not like
    emb = base.get_input_embeddings().weight
    assert not torch.equal(emb, like.get_input_embeddings().weight)
    assert m["last_loss"] < 0.6 * m["first_loss"], m
