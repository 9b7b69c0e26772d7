"""COR at scale: successor table and ANN index for N distinct queries and T transitions.

Measures, each stage in its own subprocess (so peak RSS is the stage's own):

* ``successor_table``: the in-memory successor table (generate + build time, peak RSS);
* ``faiss``: an in-memory FAISS HNSW index, the yardstick;
* ``faiss_ivf``: an in-memory FAISS IVF-Flat index, a second yardstick;
* ``milvus``: the milvus-lite collection COR serves from, built by ``MilvusQueryIndex.build``
  (insert, flush, index, load) exactly as ``cor-build`` does.

For every index: build time (insert and index separately where they are separate), RSS
before the build and peak, p50/p99 single-query search latency over ``--probes`` queries
(``--milvus-probes`` for milvus-lite), and recall@k against exact brute-force search
(numpy, float32 dot products) on the first ``--recall-sample`` probes. Vectors are synthetic
clustered unit vectors of the encoder's dimension (384); probes are known vectors nudged off
their position (the unseen-query case). The encoder's own throughput is measured apart, by
``benchmarks/bench_encoder.py``.

    .venv/bin/python benchmarks/bench_cor_scale.py --queries 1000000 --transitions 10000000
    .venv/bin/python benchmarks/bench_cor_scale.py --queries 20000 --transitions 200000  # quick

Stages print progress (and a heartbeat with elapsed time and RSS) to stderr as they go, one
JSON line per finished stage, and the combined report as the last stdout line, with the
milvus-lite / FAISS ratios: against HNSW at ``--ef-search``, against IVF-Flat, and against
HNSW at the smallest ``--ef-sweep`` value whose recall reaches milvus-lite's.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

STAGES = ("successor_table", "faiss", "faiss_ivf", "milvus")
_PHASE = {"stage": "", "phase": "", "t0": time.perf_counter()}


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--queries", type=int, default=1_000_000, help="Distinct known queries.")
    p.add_argument("--transitions", type=int, default=10_000_000, help="(q, q_next) pairs.")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--clusters", type=int, default=2000)
    p.add_argument("--probes", type=int, default=300, help="Search queries timed.")
    p.add_argument("--milvus-probes", type=int, help="Queries timed on milvus-lite (--probes).")
    p.add_argument("--recall-sample", type=int, default=200, help="Probes scored for recall.")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef-search", type=int, default=64)
    p.add_argument("--ef-sweep", default="128,256,512", help="More FAISS HNSW efSearch values.")
    p.add_argument("--ivf-nprobe", type=int, default=16)
    p.add_argument(
        "--milvus-partitions",
        type=int,
        default=None,
        help="k-means partitions of the milvus-lite collection (default: auto, as cor-build; "
        "0 = one unpartitioned collection, the layout before partitions).",
    )
    p.add_argument(
        "--milvus-probe",
        default="3",
        help="Partitions each milvus-lite search visits; a comma list times each (3).",
    )
    p.add_argument("--heartbeat", type=float, default=60.0, help="Seconds between heartbeats.")
    p.add_argument("--stage", choices=STAGES, help="Run one stage in this process (internal).")
    p.add_argument("--stages", default=",".join(STAGES), help="Comma-separated stages to run.")
    p.add_argument("--stage-timeout", type=float, default=3600.0, help="Seconds per stage.")
    p.add_argument("--workdir", type=Path, help="Where milvus-lite writes (default: a tmpdir).")
    return p


# -- measurement helpers -------------------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def log(**fields: Any) -> None:
    fields = {
        "stage": _PHASE["stage"],
        "t_s": round(time.perf_counter() - float(_PHASE["t0"]), 1),
        **fields,
    }
    print(json.dumps(fields), file=sys.stderr, flush=True)


def phase(name: str) -> None:
    _PHASE["phase"] = name
    log(phase=name, rss_mib=round(rss_mib()))


def start_heartbeat(every: float) -> None:
    def beat() -> None:
        while True:
            time.sleep(every)
            log(heartbeat=_PHASE["phase"], rss_mib=round(rss_mib()))

    threading.Thread(target=beat, daemon=True).start()


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
    """Exact top-k by inner product (= cosine on unit vectors), numpy, in chunks."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), 100_000):
        sims = queries @ vectors[start : start + 100_000].T
        top = np.argpartition(-sims, min(k, sims.shape[1] - 1), axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(sims, top, axis=1)], axis=1)
        best_i = np.concatenate([best_i, top + start], axis=1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(best_s, keep, axis=1)
        best_i = np.take_along_axis(best_i, keep, axis=1)
    return best_i


def recall(found: list[list[int]], truth: np.ndarray, k: int) -> float:
    hits = sum(len(set(f[:k]) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True))
    return hits / (k * len(truth))


def latency(fn: Any, queries: np.ndarray) -> tuple[list[list[int]], dict[str, Any]]:
    fn(queries[:1])  # warm-up
    times, found = [], []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        found.append(fn(q[None, :]))
        times.append(time.perf_counter() - t)
        if (i + 1) % 100 == 0:
            log(searched=i + 1, last_ms=round(times[-1] * 1000, 2))
    ms = np.array(times) * 1000
    return found, {
        "probes": len(queries),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def dataset(args: argparse.Namespace, n_probes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    phase("generate vectors")
    vectors = clustered_vectors(args.queries, args.dim, args.clusters)
    qs = probes(vectors, max(n_probes, args.recall_sample))
    phase("exact top-k (numpy)")
    truth = exact_topk(vectors, qs[: args.recall_sample], args.k)
    return vectors, qs, truth


def search_report(
    args: argparse.Namespace, fn: Any, qs: np.ndarray, truth: np.ndarray, n_probes: int
) -> dict[str, Any]:
    phase("search")
    found, lat = latency(fn, qs[: max(n_probes, len(truth))])
    return {
        **lat,
        f"recall@{args.k}": recall(found[: len(truth)], truth, args.k),
        "recall_sample": len(truth),
    }


# -- stages --------------------------------------------------------------------------------


def stage_transitions(args: argparse.Namespace) -> dict[str, Any]:
    from gqr_serving.cor.artifact import successors_from_columns

    phase("generate transitions")
    rng = np.random.default_rng(2)
    n, t = args.queries, args.transitions
    names = [f"query {i}" for i in range(n)]
    start = time.perf_counter()
    src = np.minimum(rng.zipf(1.3, t) - 1, n - 1)  # a few heads with many successors
    dst = rng.integers(0, n, t)
    counts = rng.zipf(2.0, t)
    qs, nxt = [names[i] for i in src], [names[i] for i in dst]
    gen_s = time.perf_counter() - start
    phase("build successor table")
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

    vectors, qs, truth = dataset(args, args.probes)
    rss_before = rss_mib()
    phase("HNSW add")
    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(args.dim, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = args.ef_construction
    for lo in range(0, len(vectors), 100_000):
        index.add(vectors[lo : lo + 100_000])
        log(added=min(lo + 100_000, len(vectors)), rss_mib=round(rss_mib()))
    build_s = time.perf_counter() - start
    sweep = []
    for ef in sorted({args.ef_search, *(int(e) for e in args.ef_sweep.split(",") if e)}):
        index.hnsw.efSearch = max(ef, args.k)
        out = search_report(
            args, lambda q: index.search(q, args.k)[1][0].tolist(), qs, truth, args.probes
        )
        sweep.append({"ef": ef, **{k: out[k] for k in ("p50_ms", "p99_ms", f"recall@{args.k}")}})
        if ef == args.ef_search:
            primary = out
    return {
        "index": f"IndexHNSWFlat M={args.hnsw_m} efC={args.ef_construction} ef={args.ef_search}",
        "build_s": build_s,
        **primary,
        "ef_sweep": sweep,
        "rss_before_build_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    }


def stage_faiss_ivf(args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    vectors, qs, truth = dataset(args, args.probes)
    rss_before = rss_mib()
    nlist = max(16, int(2 * math.sqrt(len(vectors))))
    train = vectors[np.random.default_rng(3).permutation(len(vectors))[: 64 * nlist]]
    phase(f"IVF train nlist={nlist} on {len(train)}")
    start = time.perf_counter()
    quantizer = faiss.IndexFlatIP(args.dim)
    index = faiss.IndexIVFFlat(quantizer, args.dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(train)
    train_s = time.perf_counter() - start
    phase("IVF add")
    index.add(vectors)
    build_s = time.perf_counter() - start
    index.nprobe = args.ivf_nprobe
    out = search_report(
        args, lambda q: index.search(q, args.k)[1][0].tolist(), qs, truth, args.probes
    )
    return {
        "index": f"IndexIVFFlat nlist={nlist} nprobe={args.ivf_nprobe}",
        "train_s": train_s,
        "build_s": build_s,
        **out,
        "rss_before_build_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    }


def _milvus_segments(path: str, collection: str) -> dict[str, Any]:
    """milvus-lite internals, best effort: segments and how many carry a vector index."""
    try:
        from milvus_lite.server_manager import server_manager_instance

        _server, db, _port = server_manager_instance._servers[str(Path(path).resolve())]
        segs = list(db.get_collection(collection)._segment_cache.values())
        return {
            "segments": len(segs),
            "indexed_segments": sum("vector" in s.indexes for s in segs),
            "largest_segment_rows": max((s.num_rows for s in segs), default=0),
        }
    except Exception as exc:  # internals differ between versions: report, don't fail
        return {"segments": f"unknown ({type(exc).__name__})"}


def stage_milvus(args: argparse.Namespace) -> dict[str, Any]:
    from gqr_serving.cor.index import MilvusQueryIndex

    n_probes = args.milvus_probes or args.probes
    vectors, qs, truth = dataset(args, n_probes)
    names = [str(i) for i in range(args.queries)]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = str(Path(tmp) / "bench.db")
        index = MilvusQueryIndex(
            path,
            timeout=600.0,
            hnsw_m=args.hnsw_m,
            ef_construction=args.ef_construction,
            ef_search=args.ef_search,
            partitions=args.milvus_partitions,
        )
        rss_before = rss_mib()
        inserted = {"rows": 0, "t": 0.0}

        def progress(rows: int) -> None:
            inserted["rows"] += rows
            inserted["t"] = time.perf_counter()
            if inserted["rows"] % 100_000 == 0 or inserted["rows"] == args.queries:
                log(inserted=inserted["rows"], rss_mib=round(rss_mib()))
            if inserted["rows"] == args.queries:
                phase("flush + create_index (HNSW per segment) + load")

        phase("insert")
        start = time.perf_counter()
        index.build("bench", names, vectors, batch_size=10_000, progress=progress)
        index.switch("bench")
        end = time.perf_counter()
        segments = _milvus_segments(path, index.collection_name("bench"))
        log(built=True, **segments)
        search = index.searcher("bench", args.dim)
        probes_timed = [int(x) for x in str(args.milvus_probe).split(",")]
        by_probe: dict[str, Any] = {}
        for probe in probes_timed:  # the first value is the headline figure
            index.probe = probe
            phase(f"search, probe {probe} of {search.partitions} partitions")
            by_probe[str(probe)] = search_report(
                args,
                lambda q: [int(n) for n, _ in search.search(q, args.k)[0]],
                qs,
                truth,
                n_probes,
            )
            log(probe=probe, partitions=search.partitions, **by_probe[str(probe)])
        out = by_probe[str(probes_timed[0])]
        partitions = search.partitions
        index.close()
        disk = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return {
        "index": f"milvus-lite HNSW M={args.hnsw_m} efC={args.ef_construction} "
        f"ef={args.ef_search}, COSINE, {partitions} partitions, probe {probes_timed[0]}",
        "partitions": partitions,
        "by_probe": by_probe if len(by_probe) > 1 else None,
        "insert_s": inserted["t"] - start,
        "index_s": end - inserted["t"],
        "build_s": end - start,
        **segments,
        **out,
        "rss_before_build_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
        "disk_mib": disk / 2**20,
    }


# -- driver --------------------------------------------------------------------------------


def run_stage(args: argparse.Namespace, stage: str) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--stage", stage]
    for name in (
        "queries",
        "transitions",
        "dim",
        "clusters",
        "probes",
        "milvus_probes",
        "recall_sample",
        "k",
        "hnsw_m",
        "ef_construction",
        "ef_search",
        "ef_sweep",
        "ivf_nprobe",
        "milvus_partitions",
        "milvus_probe",
        "heartbeat",
    ):
        if getattr(args, name) is not None:
            argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.workdir:
        argv += ["--workdir", str(args.workdir)]
    start = time.perf_counter()
    try:  # stderr passes through: the stage's progress shows as it runs
        proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True, timeout=args.stage_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.stage_timeout:.0f}s"}
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode} (see stderr)"}
    return {
        **json.loads(proc.stdout.strip().splitlines()[-1]),
        "stage_wall_s": time.perf_counter() - start,
    }


def ratios(m: dict[str, Any], f: dict[str, Any]) -> dict[str, float]:
    keys = ("build_s", "p50_ms", "p99_ms")
    return {k: m[k] / f[k] for k in keys if k in m and k in f and f[k] > 0}


def equal_recall(m: dict[str, Any], f: dict[str, Any], k: int) -> dict[str, Any] | None:
    """FAISS HNSW at the smallest swept ef whose recall reaches milvus-lite's (else the best)."""
    sweep, key = f.get("ef_sweep") or [], f"recall@{k}"
    if key not in m or not sweep:
        return None
    reach = [row for row in sweep if row[key] >= m[key]]
    row = reach[0] if reach else max(sweep, key=lambda r: r[key])
    return {
        "faiss_ef": row["ef"],
        f"faiss_{key}": row[key],
        f"milvus_{key}": m[key],
        **ratios(m, {**row, "build_s": f["build_s"]}),
    }


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.stage:
        _PHASE["stage"] = args.stage
        start_heartbeat(args.heartbeat)
        fn = {
            "successor_table": stage_transitions,
            "faiss": stage_faiss,
            "faiss_ivf": stage_faiss_ivf,
            "milvus": stage_milvus,
        }
        print(json.dumps(fn[args.stage](args)))
        return 0
    start = time.perf_counter()
    report: dict[str, Any] = {
        "bench": "cor_scale",
        "queries": args.queries,
        "transitions": args.transitions,
        "dim": args.dim,
        "k": args.k,
        "hnsw": {
            "M": args.hnsw_m,
            "efConstruction": args.ef_construction,
            "efSearch": args.ef_search,
        },
    }
    for stage in args.stages.split(","):
        report[stage] = run_stage(args, stage)
        print(json.dumps({stage: report[stage]}), file=sys.stderr, flush=True)
    m = report.get("milvus", {})
    for yardstick in ("faiss", "faiss_ivf"):
        if r := ratios(m, report.get(yardstick, {})):
            report[f"milvus_over_{yardstick}"] = r
    if eq := equal_recall(m, report.get("faiss", {}), args.k):
        report["milvus_over_faiss_at_equal_recall"] = eq
    report["wall_s"] = time.perf_counter() - start
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
