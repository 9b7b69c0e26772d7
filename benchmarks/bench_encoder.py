"""COR query encoder throughput: queries/s per batch size (packaged MiniLM, and hashing).

    .venv/bin/python benchmarks/bench_encoder.py --batch-sizes 1,8,32,128 --queries 512

A model folder runs twice in the same run, on each runtime of ``--runtimes``: ``torch``
(sentence-transformers, what training Jobs use) and ``numpy`` (the gateway's, no torch); the
report gives numpy's queries/s over torch's per batch size.

Prints one JSON line per (encoder, batch size) to stderr and the report as the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--encoders", default="minilm,hashing", help="Comma-separated specs.")
    p.add_argument("--batch-sizes", default="1,8,32,128")
    p.add_argument("--queries", type=int, default=512, help="Queries encoded per measurement.")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default).")
    p.add_argument("--runtimes", default="torch,numpy", help="Runtimes for model folders.")
    return p


def synthetic_queries(n: int, seed: int = 0) -> list[str]:
    words = [
        "cheap",
        "flights",
        "hotel",
        "paris",
        "python",
        "list",
        "bread",
        "recipe",
        "weather",
        "news",
        "tax",
        "code",
        "retirement",
        "plan",
        "mountains",
        "park",
        "near",
        "me",
        "best",
        "how",
        "to",
        "review",
        "price",
        "2024",
    ]
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, rng.integers(2, 7))) for _ in range(n)]


def main(argv: list[str] | None = None) -> int:
    from gqr_serving.cor.encoders import SentenceTransformerEncoder, load_encoder

    args = make_parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    texts = synthetic_queries(args.queries)
    rows: list[dict[str, Any]] = []
    runs = [
        (spec, runtime)
        for spec in args.encoders.split(",")
        for runtime in (["-"] if spec.startswith("hashing") else args.runtimes.split(","))
    ]
    for spec, runtime in runs:
        t0 = time.perf_counter()
        enc = load_encoder(spec) if runtime == "-" else load_encoder(spec, runtime=runtime)
        load_s = time.perf_counter() - t0
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            if isinstance(enc, SentenceTransformerEncoder):
                enc.batch_size = bs
            enc.encode(texts[:bs])  # warm-up
            t0 = time.perf_counter()
            for start in range(0, len(texts), bs):
                enc.encode(texts[start : start + bs])
            secs = time.perf_counter() - t0
            row = {
                "encoder": enc.name,
                "runtime": runtime,
                "load_s": load_s,
                "batch_size": bs,
                "queries_per_s": len(texts) / secs,
                "ms_per_batch": 1000 * secs * bs / len(texts),
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    ratios = {
        f"{a['encoder']} batch {a['batch_size']}": round(b["queries_per_s"] / a["queries_per_s"], 2)
        for a in rows
        if a["runtime"] == "torch"
        for b in rows
        if b["runtime"] == "numpy"
        and b["encoder"] == a["encoder"]
        and b["batch_size"] == a["batch_size"]
    }
    if ratios:
        print(f"numpy / torch queries/s: {ratios}", file=sys.stderr)
    print(
        json.dumps(
            {
                "bench": "encoder",
                "queries": args.queries,
                "results": rows,
                "numpy_over_torch": ratios,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
