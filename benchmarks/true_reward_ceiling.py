"""The alignment loop's ceiling on the simulated world: iterative DPO from a finished demo's SFT
model with the world's TRUE click probabilities as the reward (a perfect CTR predictor), on the
demo's test set, decoded as served. What it prints beside the demo's own run says how much of
the gap between them is the reward model's.

    python benchmarks/true_reward_ceiling.py --demo ./gqr-demo --prompts 960 --rounds 3

Each iteration line gives the reward's AEC (here the true list reward) and the true CTR of the
served lists; the oracle's true CTR is printed first. CPU time: ~4 min a 960-prompt round.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import timedelta
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", type=Path, required=True, help="A finished gqr demo folder.")
    p.add_argument("--prompts", type=int, default=960, help="DPO prompts per round (960).")
    p.add_argument("--rounds", type=int, default=3, help="DPO rounds (3).")
    p.add_argument("--out", type=Path, default=None, help="Folder (default: DEMO/true-reward).")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import torch

    from gqr_training.align import tinylm
    from gqr_training.align.beam import BeamConfig
    from gqr_training.align.data import make_task
    from gqr_training.align.dpo import PrefOptions
    from gqr_training.align.iterate import IterConfig, iterate
    from gqr_training.align.pairs import PairConfig
    from gqr_training.align.scoring import from_prob_fn
    from gqr_training.demo import START, open_demo, world_request

    torch.set_num_threads(args.threads)
    demo = open_demo(args.demo)
    world, preset, cor = demo.world, demo.preset, demo.cor
    per_day = max(250, args.prompts * args.rounds // 14 + 1)  # 250: the measured run's pool
    train_reqs = [
        r for d in range(14) for r in world.sample_requests(START + timedelta(days=d), per_day)
    ]
    random.Random(1).shuffle(train_reqs)
    test_reqs = world.sample_requests(demo.day(1), 300)  # the demo's test set
    by_query: dict[str, object] = {}
    for r in test_reqs + train_reqs:
        by_query.setdefault(r.query, r)
    scorer = from_prob_fn(lambda q, qs: world.true_click_probs(by_query[q], qs))  # type: ignore[arg-type]
    train = [make_task(preset, world_request(r, cor)) for r in train_reqs]
    test = [make_task(preset, world_request(r, cor)) for r in test_reqs]

    def true_ctr(lists: object) -> float:
        return sum(
            world.true_list_ctr(r, q) if q else 0.0
            for r, q in zip(test_reqs, lists, strict=True)  # type: ignore[call-overload]
        ) / len(test_reqs)

    print(f"oracle true CTR {true_ctr([world.oracle_list(r) for r in test_reqs]):.4f}")
    model, tok = tinylm.load(args.demo / "llm" / "sft")
    cfg = IterConfig(
        max_iterations=args.rounds,
        delta=-1.0,  # every round runs
        prompts_per_iteration=args.prompts,
        pairs=PairConfig(beam=BeamConfig(candidates=8, temperatures=(0.7, 1.0))),
        pref=PrefOptions(lr=5e-4, epochs=2, sft_weight=3.0, progress=False),
    )
    t = time.time()
    out = args.out or args.demo / "true-reward"
    res = iterate(model, tok, preset, train, test, scorer, out, cfg, true_ctr)
    print(f"{time.time() - t:.0f} s; {res.stopped}")


if __name__ == "__main__":
    main()
