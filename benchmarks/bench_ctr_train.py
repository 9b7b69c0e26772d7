"""CTR training throughput (samples/s, one AdamW step per batch) on CPU, and on GPU with bf16
autocast when one exists; the last stdout line is a JSON of the figures.

    .venv/bin/python benchmarks/bench_ctr_train.py --sizes tiny,base --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

SIZES = {
    "tiny": dict(hidden=128, layers=2, heads=2, intermediate=512),
    "base": dict(hidden=768, layers=12, heads=12, intermediate=3072),
}


def throughput(size: str, device: str, batch: int, seq: int, steps: int) -> dict[str, float]:
    import torch

    from gqr_training.ctr.loop import FitOptions, make_optimizer, train_step
    from gqr_training.ctr.model import CTRConfig, CTRModel, tiny_backbone_config

    conf = CTRConfig(backbone="bert", variant="ctx", max_length=64)
    conf.backbone_config = tiny_backbone_config("bert", 30522, 0, max_length=64, **SIZES[size])
    model = CTRModel(conf).to(device)
    opt, sched = make_optimizer(model, FitOptions(), total_steps=steps + 1)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 30522, (batch, seq), generator=g).to(device)
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "token_type_ids": torch.zeros_like(ids),
        "domain_ids": torch.randint(0, 4, (batch, seq), generator=g).to(device),
    }
    labels = (torch.rand(batch, generator=g) < 0.1).float().to(device)
    train_step(model, opt, sched, inputs, labels, device)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        train_step(model, opt, sched, inputs, labels, device)
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    return {"samples_per_s": steps * batch / dt, "batch": float(batch), "seq_len": float(seq)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="tiny,base")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seq", type=int, default=24, help="Tokens per input (ctx inputs: ~20).")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"threads": args.threads}
    for size in args.sizes.split(","):
        batch = 256 if size == "tiny" else 16
        steps = args.steps if size == "tiny" else max(2, args.steps // 5)
        row = {"cpu": throughput(size, "cpu", batch, args.seq, steps)}
        if torch.cuda.is_available():
            row["cuda_bf16"] = throughput(size, "cuda", batch * 8, args.seq, args.steps * 5)
        else:
            print(f"{size}: no GPU here; skipping the CUDA bf16 figures", file=sys.stderr)
        results[size] = row
        print(f"{size}: {json.dumps(row)}", file=sys.stderr, flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
