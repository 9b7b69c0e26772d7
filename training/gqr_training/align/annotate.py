"""``gqr annotate``: SFT data from a teacher LLM behind an OpenAI-compatible chat API.

    gqr annotate --teacher-url http://localhost:8000 --requests reqs.jsonl --out sft.jsonl

Each request (a ``PromptRequest`` JSON line) is rendered as chat messages by the universal
template, sent to ``/v1/chat/completions``, read back with the total parser and the preset's
constraints; usable answers become ``{prompt, completion}`` rows (plus ``--augment`` shuffled
copies). Answers that parse to no query are counted and skipped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gqr_serving.prompt import PromptRequest, TaskPreset, enforce, parse, render_messages


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--teacher-url", required=True, help="Base URL of an OpenAI-compatible server.")
    a("--teacher-model", default="teacher", help="Model name sent to the server.")
    a("--requests", required=True, type=Path, help="PromptRequests (JSON Lines).")
    a("--out", required=True, type=Path, help="Output {prompt, completion} JSON Lines.")
    a("--task", default="suggestion", help="Task preset (suggestion).")
    a("--augment", type=int, default=1, help="Shuffled extra copies per usable answer (1).")
    a("--temperature", type=float, default=0.7)
    a("--api-key-env", default=None, help="Environment variable holding the API key.")


def run(args: argparse.Namespace) -> int:
    import os

    from gqr_serving.prompt import load_preset
    from gqr_training.align.data import read_jsonl, request_from_row, sft_examples, write_jsonl

    preset = load_preset(args.task)
    reqs = [request_from_row(r) for r in read_jsonl(args.requests)]
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    lists, stats = annotate(
        args.teacher_url, preset, reqs, args.teacher_model, args.temperature, api_key=key
    )
    keep = [(r, q) for r, q in zip(reqs, lists, strict=True) if q]
    rows = sft_examples(preset, [r for r, _ in keep], [q for _, q in keep], augment=args.augment)
    n = write_jsonl(args.out, rows)
    print(
        f"annotated {stats.requests} requests: {stats.usable} usable, {stats.empty} empty, "
        f"{stats.failed} failed; wrote {n} rows to {args.out}"
    )
    return 0 if stats.usable else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gqr annotate", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
