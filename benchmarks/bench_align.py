"""Throughput of the alignment loop's inner parts on the tiny LM (CPU): next-query candidate
generation, full-response sampling and CTR-guided beam search. Each part runs twice in the same
run, with the engine's batches formed in input order (the baseline) and by token length (the
default), and the ratio is printed.

    .venv/bin/python -m benchmarks.bench_align --prompts 64 --threads 1
    .venv/bin/python -m benchmarks.bench_align --demo ./gqr-demo --prompts 128 --threads 2

(from the repository root, as a module: it imports ``testsupport``).

``--demo DIR`` uses a finished ``gqr demo`` folder: its SFT model, its CTR predictor as the
scorer and the world's requests with the co-occurring queries of its logs (prompts of 40-130
tokens, as the DPO rounds see them); without it, an untrained tiny LM, the toy world's
prompts and its known scorer (``testsupport.toyworld``, as the alignment tests use them).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

try:
    from testsupport.toyworld import PRESET, known_scorer, requests, sft_rows, tiny_model
except ModuleNotFoundError as exc:  # run as a script: benchmarks/ alone is on sys.path
    raise SystemExit(
        f"{exc}: run python -m benchmarks.bench_align from the repository root"
    ) from None


def _demo_parts(path: Path, prompts: int) -> tuple[Any, Any, Any, list[Any], Any]:
    from gqr_training.align import tinylm
    from gqr_training.align.data import make_task
    from gqr_training.align.scoring import from_ctr_scorer
    from gqr_training.ctr.scorer import CTRScorer
    from gqr_training.demo import open_demo, world_request

    demo = open_demo(path)
    scorer = from_ctr_scorer(CTRScorer.load(Path(demo.report["ctr_artifact"])))
    model, tok = tinylm.load(path / "llm" / "sft")
    reqs = demo.world.sample_requests(demo.day(2), prompts)
    tasks = [make_task(demo.preset, world_request(r, demo.cor)) for r in reqs]
    return model, tok, demo.preset, tasks, scorer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default=None, help="A saved model folder (default: untrained tiny).")
    p.add_argument("--demo", type=Path, default=None, help="A finished gqr demo folder.")
    args = p.parse_args()

    import torch

    from gqr_training.align import tinylm
    from gqr_training.align.beam import BeamConfig, beam_search
    from gqr_training.align.generate import HFEngine, next_query_candidates
    from gqr_training.align.pairs import sample_raw

    torch.set_num_threads(args.threads)
    if args.demo:
        model, tok, preset, tasks, scorer = _demo_parts(args.demo, args.prompts)
    else:
        from gqr_training.align.data import make_task

        model, tok = (
            tinylm.load(args.model) if args.model else tiny_model(sft_rows(200), hidden=128)
        )
        preset, scorer = PRESET, known_scorer
        tasks = [make_task(PRESET, r) for r in requests(args.prompts)]
    lengths = sorted(len(tok(t.prompt)["input_ids"]) for t in tasks)
    print(
        f"model: {tinylm.n_params(model):,} parameters; {len(tasks)} prompts of "
        f"{lengths[0]}-{lengths[-1]} tokens (median {lengths[len(lengths) // 2]}); "
        f"{torch.get_num_threads()} threads"
    )
    beam = BeamConfig(beam_size=4, candidates=8, temperatures=(0.7, 1.0))
    parts = {
        "next-query candidates (C=8), candidates/s": (
            8 * len(tasks),
            lambda e: next_query_candidates(e, [x.prompt for x in tasks], 8, (0.7, 1.0)),
        ),
        "full responses (N_r=8), responses/s": (
            8 * len(tasks),
            lambda e: sample_raw(e, preset, tasks, 8, 1.0),
        ),
        "beam search (B=4, C=8, N=3), prompts/s": (
            len(tasks),
            lambda e: beam_search(e, preset, tasks, scorer, beam),
        ),
    }
    print(f"{'':44} {'input order':>12} {'by length':>12} {'ratio':>7}")
    for name, (count, work) in parts.items():
        rate = {}
        for by_length in (False, True):
            eng = HFEngine(model, tok, sort_by_length=by_length)
            t = time.perf_counter()
            work(eng)
            rate[by_length] = count / (time.perf_counter() - t)
        print(f"{name:44} {rate[False]:12.1f} {rate[True]:12.1f} {rate[True] / rate[False]:6.2f}x")


if __name__ == "__main__":
    main()
