"""Partitioned COR collections on real query text: search time and recall per probe.

    .venv/bin/python benchmarks/bench_cor_partitions.py [--encoders minilm,hashing:64] \
        [--requests-per-day 5000] [--days 14] [--partitions auto] [--probes-list 1,2,3,4,6]

Known queries are the simulated world's (``gqr_training.sim``: every query and history entry
of ``--days`` days of requests); the searched queries are the next day's queries never seen
before (the ones the gateway sends to Milvus). For each encoder: one milvus-lite collection
built whole (``--partitions 0``, the baseline) and one partitioned (``MilvusQueryIndex``,
exactly as ``cor-build`` builds it), then single-query searches through the same searcher the
gateway uses, timed per probe, with recall@10 against exact (numpy) search. Synthetic vectors
(``bench_cor_scale.py``) have no topic structure, so they understate what routing keeps; this
measures it on query text. Prints progress to stderr and one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date, timedelta
from typing import Any

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoders", default="minilm,hashing:64")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--requests-per-day", type=int, default=5000)
    ap.add_argument("--searches", type=int, default=300, help="Unseen queries searched.")
    ap.add_argument("--partitions", default="auto", help="auto or a number (cor-build's).")
    ap.add_argument("--probes-list", default="1,2,3,4,6")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from gqr_serving.cor.encoders import load_encoder
    from gqr_serving.cor.index import MilvusQueryIndex
    from gqr_serving.cor.neighbours import ExactNeighbourIndex
    from gqr_training.sim import World

    world, day = World(args.seed), date(2026, 1, 1)
    known_set: set[str] = set()
    for d in range(args.days):
        for r in world.sample_requests(day + timedelta(days=d), args.requests_per_day):
            known_set.add(r.query)
            known_set.update(r.history)
    known = sorted(known_set)
    later = world.sample_requests(day + timedelta(days=args.days + 1), 4 * args.searches)
    unseen = sorted({r.query for r in later} - known_set)[: args.searches]
    print(f"{len(known)} known queries, {len(unseen)} unseen ones searched", file=sys.stderr)
    parts = None if args.partitions == "auto" else int(args.partitions)
    probes = [int(x) for x in args.probes_list.split(",")]
    report: dict[str, Any] = {
        "bench": "cor_partitions",
        "known_queries": len(known),
        "searches": len(unseen),
        "k": args.k,
        "encoders": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.encoders.split(","):
            enc = load_encoder(spec)
            t0 = time.perf_counter()
            vecs = enc.encode(known).astype(np.float32)
            qs = enc.encode(unseen).astype(np.float32)
            print(f"{spec}: encoded in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            exact = ExactNeighbourIndex(known, vecs).search(qs, args.k)
            rows: list[dict[str, Any]] = []
            for layout, n_parts, probe_list in (("whole", 0, [1]), ("partitioned", parts, probes)):
                path = f"{tmp}/{spec.replace(':', '_')}_{layout}.db"
                index = MilvusQueryIndex(path, prefix="bench", partitions=n_parts)
                t0 = time.perf_counter()
                index.build("v1", known, vecs)
                build_s = time.perf_counter() - t0
                search = index.searcher("v1", enc.dim)
                for probe in probe_list:
                    index.probe = probe
                    for i in range(min(10, len(qs))):  # warm
                        search.search(qs[i : i + 1], args.k)
                    times, hits = [], 0
                    for i in range(len(qs)):
                        t = time.perf_counter()
                        got = search.search(qs[i : i + 1], args.k)[0]
                        times.append(time.perf_counter() - t)
                        hits += len({q for q, _ in got} & {q for q, _ in exact[i]})
                    ms = np.array(times) * 1000
                    row = {
                        "layout": layout,
                        "partitions": search.partitions,
                        "probe": probe if search.partitions else None,
                        "build_s": round(build_s, 2),
                        "p50_ms": round(float(np.percentile(ms, 50)), 2),
                        "p99_ms": round(float(np.percentile(ms, 99)), 2),
                        "recall_at_k": round(hits / max(1, sum(len(e) for e in exact)), 4),
                    }
                    rows.append(row)
                    print(f"{spec}: {json.dumps(row)}", file=sys.stderr)
                index.close()
            report["encoders"][spec] = rows
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
