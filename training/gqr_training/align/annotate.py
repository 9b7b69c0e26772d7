"""``gqr annotate``: SFT data from a teacher LLM behind an OpenAI-compatible chat API.

    gqr annotate --teacher-url http://localhost:8000 --requests reqs.jsonl --out sft.jsonl

Each request (a ``PromptRequest`` JSON line) is rendered as chat messages by the universal
template, sent to ``/v1/chat/completions``, read back with the total parser and the preset's
constraints; usable answers become ``{prompt, completion}`` rows (plus ``--augment`` shuffled
copies). Answers that parse to no query are counted and skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gqr_serving.prompt import PromptRequest, TaskPreset, enforce, parse, render_messages
from gqr_training.cliconfig import ConfigParser, at_least, validate


@dataclass
class AnnotateStats:
    requests: int = 0
    usable: int = 0
    empty: int = 0
    failed: int = 0


def ask_teacher(
    client: Any, model: str, preset: TaskPreset, request: PromptRequest, temperature: float
) -> list[str]:
    """The teacher's queries for one request, after parse + enforce (may be empty)."""
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": render_messages(preset, request),
            "temperature": temperature,
        },
    )
    r.raise_for_status()
    text = r.json()["choices"][0]["message"]["content"]
    return list(enforce(preset, request, parse(preset, text)).queries)


def annotate(
    base_url: str,
    preset: TaskPreset,
    requests: Sequence[PromptRequest],
    model: str = "teacher",
    temperature: float = 0.7,
    timeout: float = 60.0,
    api_key: str | None = None,
) -> tuple[list[list[str]], AnnotateStats]:
    """One teacher list per request (empty where the teacher failed or said nothing usable)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    stats = AnnotateStats()
    out: list[list[str]] = []
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers) as client:
        for req in requests:
            stats.requests += 1
            try:
                qs = ask_teacher(client, model, preset, req, temperature)
            except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError):
                stats.failed += 1
                qs = []
            stats.usable += bool(qs)
            out.append(qs)
    stats.empty = stats.requests - stats.usable - stats.failed
    return out, stats


@dataclass(kw_only=True)
class AnnotateConfig:
    """Everything ``gqr annotate`` is told: the teacher, the requests and the output."""

    teacher_url: str = field(metadata={"help": "Base URL of an OpenAI-compatible server."})
    teacher_model: str = field(
        default="teacher", metadata={"help": "Model name sent to the server."}
    )
    requests: Path = field(metadata={"help": "PromptRequests (JSON Lines)."})
    out: Path = field(metadata={"help": "Output {prompt, completion} JSON Lines."})
    task: str = field(default="suggestion", metadata={"help": "Task preset (suggestion)."})
    augment: int = field(
        default=1,
        metadata={
            "help": "Shuffled extra copies per usable answer (1).",
            "rule": at_least(0, "a whole number"),
        },
    )
    temperature: float = field(
        default=0.7,
        metadata={"help": "The teacher's sampling temperature (0.7).", "rule": at_least(0)},
    )
    api_key_env: str | None = field(
        default=None, metadata={"help": "Environment variable holding the API key."}
    )

    def __post_init__(self) -> None:
        validate(self)


def make_parser() -> ConfigParser[AnnotateConfig]:
    return ConfigParser(
        AnnotateConfig,
        prog="gqr annotate",
        description="Render each request with the universal prompt, ask the teacher, keep the "
        "usable answers as {prompt, completion} JSON Lines.",
    )


def run(cfg: AnnotateConfig) -> int:
    import os

    from gqr_serving.prompt import load_preset
    from gqr_training.align.data import read_jsonl, request_from_row, sft_examples, write_jsonl

    preset = load_preset(cfg.task)
    reqs = [request_from_row(r) for r in read_jsonl(cfg.requests)]
    key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    lists, stats = annotate(
        cfg.teacher_url, preset, reqs, cfg.teacher_model, cfg.temperature, api_key=key
    )
    keep = [(r, q) for r, q in zip(reqs, lists, strict=True) if q]
    rows = sft_examples(preset, [r for r, _ in keep], [q for _, q in keep], augment=cfg.augment)
    n = write_jsonl(cfg.out, rows)
    print(
        f"annotated {stats.requests} requests: {stats.usable} usable, {stats.empty} empty, "
        f"{stats.failed} failed; wrote {n} rows to {cfg.out}"
    )
    return 0 if stats.usable else 1


def main(argv: list[str] | None = None) -> int:
    return run(make_parser().parse_config(argv))


if __name__ == "__main__":
    sys.exit(main())
