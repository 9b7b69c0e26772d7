"""Few-shot prompting of the base model: Table 3's first row (the base LLM, not fine-tuned,
given a few annotated examples in its prompt).

The base model. With ``--model PATH`` (a real pretrained LLM) it is that model as loaded.
The default tiny LM has no pretraining at all, so its base is built here: a tiny LM of the
SFT model's shape and tokenizer trained as a plain language model on the *unlabelled* text of
the logs, i.e. each session's queries in the order the user typed them (joined by the response
separator, the way a query log is usually flattened) and the AI answers users read. It knows
the domain's words and what a sequence of queries looks like; it has never seen a prompt or an
annotated list. That is the role a pretrained LLM plays in the paper's few-shot baseline.

The prompt: ``k`` demonstrations (an annotated request rendered by the universal template and
its completion, blank line after each) followed by the test prompt. Demonstrations that do not
fit the model's context are left out, the farthest from the test prompt first.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gqr_serving.prompt import SEP
from gqr_training.align.data import Task

DEMO_SEPARATOR = "\n\n"
"""Text between a demonstration's completion and the next prompt."""


@dataclass(frozen=True)
class BaseCorpus:
    """The unlabelled text a base LM is pretrained on (see the module docstring)."""

    lines: list[str]
    sessions: int
    answers: int


def base_corpus(
    sessions: Iterable[tuple[str, Sequence[Any]]],
    answers: Iterable[str | None],
    max_lines: int = 20000,
    seed: int = 0,
) -> BaseCorpus:
    """Session query sequences (two queries or more) and distinct AI answers, shuffled, at most
    ``max_lines`` (sessions first up to 3/4 of it, then answers)."""
    seqs = [f" {SEP} ".join(q.query for q in qs) for _, qs in sessions if len(qs) >= 2]
    texts = list(dict.fromkeys(a.strip() for a in answers if a and a.strip()))
    rng = random.Random(seed)
    rng.shuffle(seqs)
    rng.shuffle(texts)
    n_seq = min(len(seqs), max(max_lines - len(texts), (3 * max_lines) // 4))
    lines = seqs[:n_seq] + texts[: max(0, max_lines - n_seq)]
    rng.shuffle(lines)
    if not lines:
        raise ValueError("base_corpus: the logs hold no session of 2+ queries and no AI answer")
    return BaseCorpus(lines, n_seq, len(lines) - n_seq)


def demonstrations(rows: Sequence[dict[str, str]], k: int, seed: int = 0) -> list[str]:
    """``k`` demonstration texts (prompt + completion) drawn from SFT-style rows."""
    if k < 1:
        raise ValueError(f"k={k}: a few-shot prompt needs at least 1 demonstration")
    if len(rows) < k:
        raise ValueError(f"{len(rows)} annotated rows for k={k} demonstrations")
    picked = random.Random(seed).sample(list(rows), k)
    return [r["prompt"] + r["completion"] + DEMO_SEPARATOR for r in picked]


def fewshot_tasks(
    tasks: Sequence[Task],
    demos: Sequence[str],
    tokenizer: Any,
    max_tokens: int,
    reserve: int = 48,
) -> tuple[list[Task], float]:
    """The tasks with the demonstrations before their prompts; the second value is the mean
    number of demonstrations that fit (``max_tokens`` minus ``reserve`` for the answer)."""

    def n_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    demo_len = [n_tokens(d) for d in demos]
    out: list[Task] = []
    used = 0
    for t in tasks:
        budget = max_tokens - reserve - n_tokens(t.prompt)
        keep: list[str] = []
        for d, n in zip(reversed(demos), reversed(demo_len), strict=True):
            if n > budget:
                break
            keep.insert(0, d)
            budget -= n
        used += len(keep)
        out.append(replace(t, prompt="".join(keep) + t.prompt))
    return out, used / max(1, len(tasks))


def pretrain_base(
    tokenizer: Any, like: Any, corpus: BaseCorpus, out_dir: Any, opts: Any
) -> tuple[Any, dict[str, float]]:
    """A fresh tiny LM shaped like ``like`` (same config, new random weights), trained as a
    plain language model on ``corpus`` (TRL ``SFTTrainer`` on a text dataset)."""
    import torch
    from transformers import AutoModelForCausalLM

    from gqr_training.align.sft import train_sft

    torch.manual_seed(opts.seed)
    model = AutoModelForCausalLM.from_config(like.config).to(opts.device)  # type: ignore[no-untyped-call]
    rows = [{"text": line} for line in corpus.lines]
    return train_sft(model, tokenizer, rows, out_dir, opts)
