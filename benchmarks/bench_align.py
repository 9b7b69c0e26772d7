"""Throughput of the alignment loop's inner parts on the tiny LM (CPU): next-query candidate
generation, full-response sampling and CTR-guided beam search, with a known scorer.

    python benchmarks/bench_align.py --prompts 64 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "align"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default=None, help="A saved model folder (default: untrained tiny).")
    args = p.parse_args()

    import torch
    from align_helpers import PRESET, known_scorer, requests, sft_rows, tiny_model

    from gqr_training.align import tinylm
    from gqr_training.align.beam import BeamConfig, beam_search
    from gqr_training.align.data import make_task
    from gqr_training.align.generate import HFEngine, next_query_candidates
    from gqr_training.align.pairs import sample_responses

    torch.set_num_threads(args.threads)
    model, tok = tinylm.load(args.model) if args.model else tiny_model(sft_rows(200), hidden=128)
    tasks = [make_task(PRESET, r) for r in requests(args.prompts)]
    eng = HFEngine(model, tok)
    print(
        f"model: {tinylm.n_params(model):,} parameters; {args.prompts} prompts; "
        f"{torch.get_num_threads()} threads"
    )
    t = time.time()
    next_query_candidates(eng, [x.prompt for x in tasks], 4)
    dt = time.time() - t
    print(f"next-query candidates (C=4): {4 * args.prompts / dt:8.1f} candidates/s")
    t = time.time()
    sample_responses(eng, PRESET, tasks, 8, 1.0)
    dt = time.time() - t
    print(f"full responses (N_r=8):      {8 * args.prompts / dt:8.1f} responses/s")
    t = time.time()
    beam_search(eng, PRESET, tasks, known_scorer, BeamConfig(beam_size=4, candidates=4))
    dt = time.time() - t
    print(f"beam search (B=4, C=4, N=3): {args.prompts / dt:8.2f} prompts/s")


if __name__ == "__main__":
    main()
