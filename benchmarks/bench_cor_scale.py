"""COR at scale: successor table and ANN index for N distinct queries and T transitions.

Measures, each stage in its own subprocess (so peak RSS is the stage's own): the in-memory
successor table (build time, RSS), an in-memory FAISS HNSW index (the yardstick) and the
milvus-lite collection that COR serves from (build time, p50/p99 single-query search
latency, recall@10 against exact brute-force search with faiss IndexFlatIP). Vectors are
synthetic clustered unit vectors of the encoder's dimension (384).

    .venv/bin/python benchmarks/bench_cor_scale.py --queries 1000000 --transitions 10000000
    .venv/bin/python benchmarks/bench_cor_scale.py --queries 20000 --transitions 200000  # quick

Prints one JSON line per stage to stderr and the combined report as the last stdout line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

STAGES = ("successor_table", "faiss", "milvus")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--queries", type=int, default=1_000_000, help="Distinct known queries.")
    p.add_argument("--transitions", type=int, default=10_000_000, help="(q, q_next) pairs.")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--clusters", type=int, default=2000)
    p.add_argument("--probes", type=int, default=500, help="Search queries timed.")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef-search", type=int, default=64)
    p.add_argument("--stage", choices=STAGES, help="Run one stage in this process (internal).")
    p.add_argument("--stages", default=",".join(STAGES), help="Comma-separated stages to run.")
    p.add_argument("--stage-timeout", type=float, default=3600.0, help="Seconds per stage.")
    p.add_argument("--workdir", type=Path, help="Where milvus-lite writes (default: a tmpdir).")
    return p


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def clustered_vectors(n: int, dim: int, clusters: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around random unit centres, in chunks to bound temporary memory."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        which = rng.integers(0, clusters, stop - start)
        noise = rng.standard_normal((stop - start, dim)).astype(np.float32) * 0.06
        block = centres[which] + noise
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def probes(vectors: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """Unseen queries: known vectors nudged off their position (the sparse-query case)."""
    rng = np.random.default_rng(seed)
    base = vectors[rng.integers(0, len(vectors), n)]
    q = base + rng.standard_normal(base.shape).astype(np.float32) * 0.03
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_topk(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(queries, k)[1]


def recall(found: list[list[int]], truth: np.ndarray, k: int) -> float:
    hits = sum(len(set(f[:k]) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True))
    return hits / (k * len(truth))


def latency(fn: Any, queries: np.ndarray) -> tuple[list[list[int]], dict[str, float]]:
    fn(queries[:1])  # warm-up
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(fn(q[None, :]))
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return found, {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def stage_transitions(args: argparse.Namespace) -> dict[str, Any]:
    from gqr_serving.cor.artifact import successors_from_columns

    rng = np.random.default_rng(2)
    n, t = args.queries, args.transitions
    names = [f"query {i}" for i in range(n)]
    start = time.perf_counter()
    src = np.minimum(rng.zipf(1.3, t) - 1, n - 1)  # a few heads with many successors
    dst = rng.integers(0, n, t)
    counts = rng.zipf(2.0, t)
    qs, nxt = [names[i] for i in src], [names[i] for i in dst]
    gen_s = time.perf_counter() - start
    start = time.perf_counter()
    succ, _ = successors_from_columns(qs, nxt, counts.tolist())
    return {
        "generate_s": gen_s,
        "table_build_s": time.perf_counter() - start,
        "known_queries": len(succ),
        "peak_rss_mib": peak_rss_mib(),
    }


def stage_faiss(args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    vectors = clustered_vectors(args.queries, args.dim, args.clusters)
    qs = probes(vectors, args.probes)
    truth = exact_topk(vectors, qs, args.k)
    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(args.dim, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = args.ef_construction
    index.add(vectors)
    build_s = time.perf_counter() - start
    index.hnsw.efSearch = max(args.ef_search, args.k)
    found, lat = latency(lambda q: index.search(q, args.k)[1][0].tolist(), qs)
    return {
        "build_s": build_s,
        **lat,
        "recall@10": recall(found, truth, args.k),
        "peak_rss_mib": peak_rss_mib(),
    }


def stage_milvus(args: argparse.Namespace) -> dict[str, Any]:
    from gqr_serving.cor.index import MilvusQueryIndex

    vectors = clustered_vectors(args.queries, args.dim, args.clusters)
    qs = probes(vectors, args.probes)
    truth = exact_topk(vectors, qs, args.k)
    names = [str(i) for i in range(args.queries)]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        index = MilvusQueryIndex(
            str(Path(tmp) / "bench.db"),
            timeout=600.0,
            hnsw_m=args.hnsw_m,
            ef_construction=args.ef_construction,
            ef_search=args.ef_search,
        )
        start = time.perf_counter()
        index.build("bench", names, vectors, batch_size=10_000)
        index.switch("bench")
        build_s = time.perf_counter() - start
        search = index.searcher("bench", args.dim)
        found, lat = latency(lambda q: [int(n) for n, _ in search.search(q, args.k)[0]], qs)
        index.close()
    return {
        "build_s": build_s,
        **lat,
        "recall@10": recall(found, truth, args.k),
        "peak_rss_mib": peak_rss_mib(),
    }


def run_stage(args: argparse.Namespace, stage: str) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--stage", stage]
    for name in (
        "queries",
        "transitions",
        "dim",
        "clusters",
        "probes",
        "k",
        "hnsw_m",
        "ef_construction",
        "ef_search",
    ):
        argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.workdir:
        argv += ["--workdir", str(args.workdir)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.stage_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.stage_timeout:.0f}s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.stage:
        fn = {"successor_table": stage_transitions, "faiss": stage_faiss, "milvus": stage_milvus}
        print(json.dumps(fn[args.stage](args)))
        return 0
    report: dict[str, Any] = {
        "bench": "cor_scale",
        "queries": args.queries,
        "transitions": args.transitions,
        "dim": args.dim,
        "hnsw": {
            "M": args.hnsw_m,
            "efConstruction": args.ef_construction,
            "efSearch": args.ef_search,
        },
    }
    for stage in args.stages.split(","):
        report[stage] = run_stage(args, stage)
        print(json.dumps({stage: report[stage]}), file=sys.stderr, flush=True)
    f, m = report.get("faiss", {}), report.get("milvus", {})
    if "build_s" in f and "build_s" in m:
        report["milvus_over_faiss"] = {
            key: m[key] / f[key] for key in ("build_s", "p50_ms", "p99_ms") if f[key] > 0
        }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
