"""Prompt/completion data in the universal template (the one definition in
``gqr_serving.prompt``): SFT examples with annotation augmentation, and prompt text for a
request plus a prefix of already chosen queries."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gqr_serving.prompt import (
    SEP,
    PromptRequest,
    TaskPreset,
    enforce,
    is_near_copy,
    parse,
    render,
    render_response,
)


@dataclass(frozen=True)
class Task:
    """One request to recommend for, with its preset and rendered prompt."""

    request: PromptRequest
    prompt: str
    n_queries: int
    component: str

    @property
    def query(self) -> str:
        return self.request.query


def make_task(preset: TaskPreset, request: PromptRequest) -> Task:
    n = request.num_queries or preset.num_queries.default
    return Task(request, render(preset, request), n, preset.component)


def completion_text(queries: Sequence[str]) -> str:
    """The target completion for a list (no auxiliary texts; tasks with aux use the preset)."""
    return f" {SEP} ".join(queries)


def prefix_text(queries: Sequence[str]) -> str:
    """What the model is given after the prompt when ``queries`` are already chosen."""
    return f" {SEP} ".join(queries) + f" {SEP}" if queries else ""


def read_response(preset: TaskPreset, task: Task, text: str) -> list[str]:
    """The queries a serving gateway would show for this raw completion (parse + enforce)."""
    return list(enforce(preset, task.request, parse(preset, text)).queries)


def valid_next(preset: TaskPreset, task: Task, chosen: Sequence[str], q: str) -> bool:
    """Would ``q`` survive the preset's constraints after ``chosen``?"""
    c = preset.constraints
    if not q or len(q) > c.max_chars or len(q.split()) > c.max_words:
        return False
    if any(q.lower() == x.lower() for x in chosen):
        return False
    return not (
        c.exclude_user_query and is_near_copy(q, task.query, threshold=c.near_copy_threshold)
    )


def clean_list(preset: TaskPreset, task: Task, queries: Sequence[str]) -> list[str]:
    """The annotation's queries that pass the preset's constraints (a bad label is dropped, as
    serving would drop it), at most N."""
    kept: list[str] = []
    for q in queries:
        q = " ".join(q.split())
        if len(kept) < task.n_queries and valid_next(preset, task, kept, q):
            kept.append(q)
    return kept


def sft_examples(
    preset: TaskPreset,
    requests: Sequence[PromptRequest],
    lists: Sequence[Sequence[str]],
    augment: int = 1,
    drop_side_info: float = 0.2,
    seed: int = 0,
) -> list[dict[str, str]]:
    """Prompt/completion pairs; ``augment`` extra copies each with the list shuffled and, with
    probability ``drop_side_info``, the co-occurring section left out (annotation diversity:
    the model must not learn one fixed order or depend on COR being present)."""
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    for req, raw in zip(requests, lists, strict=True):
        queries = clean_list(preset, make_task(preset, req), raw)
        if not queries:
            continue
        out.append({"prompt": render(preset, req), "completion": render_response(preset, queries)})
        for _ in range(augment):
            q = list(queries)
            rng.shuffle(q)
            r = req
            if req.side_info.cooccurring and rng.random() < drop_side_info:
                r = req.model_copy(
                    update={"side_info": req.side_info.model_copy(update={"cooccurring": []})}
                )
            out.append({"prompt": render(preset, r), "completion": render_response(preset, q)})
    return out


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]


def request_row(req: PromptRequest) -> dict[str, Any]:
    return req.model_dump(mode="json")


def request_from_row(row: dict[str, Any]) -> PromptRequest:
    return PromptRequest.model_validate(row)
