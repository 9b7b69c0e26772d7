"""In-process LLM backend under concurrency: micro-batched (``max_batch=32``) vs one call at a
time (``max_batch=1``, no batching), on the tiny LM, CPU.

    .venv/bin/python -m benchmarks.bench_local_backend [--requests 64] [--concurrency 1,8,32] \
        [--threads 0] [--max-new-tokens 48]

(from the repository root, as a module: it imports ``testsupport``).

The model is ``gqr_training.align.tinylm`` at its default size (Llama, hidden 192, 4 layers,
4 heads, MLP 512; random init) with a word-level tokenizer trained on the spot on rendered
gateway prompts (the template's fixed lines as single tokens, as the demo's model has them).
For each concurrency C, C clients each send their next request as soon as the previous one is
answered, ``--requests`` in all; every request samples at temperature 0.7, top_p 0.9, up to
``--max-new-tokens`` new tokens, with its own seed (so both backends produce the same texts and
do the same work). Printed per (max_batch, C): requests/s, new tokens/s, p50 and p99 latency
and the mean batch size; then the throughput ratio batched / one-at-a-time per C, measured in
the same run. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from testsupport.percentile import pct
except ModuleNotFoundError as exc:  # run as a script: benchmarks/ alone is on sys.path
    raise SystemExit(
        f"{exc}: run python -m benchmarks.bench_local_backend from the repository root"
    ) from None

TOPICS = [
    "green tea",
    "roth ira",
    "sourdough bread",
    "ryder cup",
    "banff park",
    "paris hotels",
    "python lists",
    "guitar chords",
    "tokyo flights",
    "pizza dough",
]
ASPECTS = ["prices", "reviews", "benefits", "history", "near me", "recipe", "tips", "vs coffee"]


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=64, help="requests per (max_batch, C) cell")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    p.add_argument("--max-batch", type=int, default=32, help="the batched backend's max_batch")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0)
    return p


def prompts(n: int, seed: int) -> list[str]:
    """Gateway prompts (the suggestion preset) for random topics, histories and answers."""
    from gqr_serving.prompt import PromptRequest, load_preset, render
    from gqr_serving.records import SideInfo

    rng = random.Random(seed)
    preset = load_preset("suggestion")
    out = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        side = SideInfo(
            history=[
                f"{rng.choice(TOPICS)} {rng.choice(ASPECTS)}" for _ in range(rng.randint(0, 3))
            ],
            ai_response=f"{topic} is something people ask about; "
            + " ".join(rng.choice(ASPECTS) for _ in range(rng.randint(3, 20))),
        )
        out.append(render(preset, PromptRequest(task="suggestion", query=topic, side_info=side)))
    return out


def build_model(out: Path, texts: list[str]) -> Path:
    from gqr_training.align import tinylm

    tok = tinylm.train_tokenizer(texts, tinylm.constant_lines(texts))
    model = tinylm.build_model(tok, tinylm.TinyLMConfig())
    tinylm.save(model, tok, out)
    print(f"model: {tinylm.n_params(model):,} parameters, vocabulary {len(tok)}")
    return out


async def cell(
    backend: Any, tok: Any, texts: list[str], concurrency: int, max_new: int
) -> dict[str, Any]:
    from gqr_serving.backends.base import GenerationParams, PromptInput

    todo = list(enumerate(texts))
    latencies: list[float] = []
    outputs: list[str] = []
    runs0, calls0 = backend.batches_run, backend.calls_run

    async def client() -> None:
        while todo:
            i, text = todo.pop()
            params = GenerationParams(
                max_new_tokens=max_new, temperature=0.7, top_p=0.9, seed=1000 + i
            )
            t = time.perf_counter()
            out = await backend.generate(PromptInput(text), params)
            latencies.append(time.perf_counter() - t)
            outputs.append(out)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    runs = backend.batches_run - runs0
    tokens = sum(len(tok(x, add_special_tokens=False).input_ids) for x in outputs)
    return {
        "requests_per_s": round(len(texts) / wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
        "p50_ms": round(pct(latencies, 0.5) * 1000, 1),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 1),
        "mean_batch": round((backend.calls_run - calls0) / max(1, runs), 2),
    }


async def run(args: argparse.Namespace, model_dir: Path, texts: list[str]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from gqr_serving.backends.base import GenerationParams, PromptInput
    from gqr_serving.backends.local import LocalBackend

    load_tokenizer: Any = AutoTokenizer.from_pretrained
    tok = load_tokenizer(str(model_dir))
    levels = [int(x) for x in args.concurrency.split(",") if x]
    results: dict[str, Any] = {}
    backends = {}
    for max_batch in (1, args.max_batch):
        backend = LocalBackend(model_dir, threads=args.threads, max_batch=max_batch)
        backend.load()
        await backend.generate(PromptInput(texts[0]), GenerationParams(max_new_tokens=4))  # warm
        backends[max_batch] = backend
    for c in levels:  # both backends back to back at each C: a busy machine hits both alike
        for max_batch, backend in backends.items():
            r = await cell(backend, tok, texts, c, args.max_new_tokens)
            results[f"max_batch={max_batch},C={c}"] = r
            print(
                f"max_batch={max_batch:<3} C={c:<3} {r['requests_per_s']:7.2f} req/s "
                f"{r['tokens_per_s']:8.1f} tok/s  p50 {r['p50_ms']:7.0f} ms  "
                f"p99 {r['p99_ms']:7.0f} ms  mean batch {r['mean_batch']:5.1f}",
                flush=True,
            )
    for backend in backends.values():
        await backend.aclose()
    for c in levels:
        base = results[f"max_batch=1,C={c}"]["requests_per_s"]
        ratio = results[f"max_batch={args.max_batch},C={c}"]["requests_per_s"] / base
        results[f"ratio,C={c}"] = round(ratio, 2)
        print(f"C={c:<3} throughput max_batch={args.max_batch} / max_batch=1: {ratio:.2f}x")
    return results


def main() -> None:
    args = make_parser().parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    texts = prompts(args.requests, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        model_dir = build_model(Path(tmp) / "lm", prompts(500, args.seed + 1) + texts)
        print(
            f"{args.requests} requests per cell, max_new_tokens {args.max_new_tokens}, "
            f"temperature 0.7, top_p 0.9, {torch.get_num_threads()} threads"
        )
        results = asyncio.run(run(args, model_dir, texts))
    print(json.dumps(results, default=str, separators=(",", ":"), allow_nan=True))


if __name__ == "__main__":
    main()
