"""``gqr sim``: write D days of a reference policy's logs and compare it with the other reference
policy and the oracle on one fixed sample of requests.

    gqr sim --policy annotator --days 14 --out /tmp/logs
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from tqdm import tqdm

from gqr_serving.logstore import LogWriter
from gqr_training.sim.policies import AnnotatorPolicy, CooccurrencePolicy, OraclePolicy
from gqr_training.sim.sessions import Request
from gqr_training.sim.traffic import run_traffic
from gqr_training.sim.world import World

# Days of sessions the CQR baseline counts before the first served day: a deployed CQR has
# history, and a cold start would make the baseline look worse than it is.
CQR_WARMUP_DAYS = 7


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    world = World(args.seed)
    cqr = CooccurrencePolicy()
    for d in range(CQR_WARMUP_DAYS, 0, -1):
        day = args.start_date - timedelta(days=d)
        cqr.observe(world.sample_requests(day, args.impressions_per_day, args.task))
    annotator = AnnotatorPolicy(world.universe, seed=args.seed)
    served: Callable[[Request], list[str]] = annotator if args.policy == "annotator" else cqr
    model_version = args.model_version or f"sim-{args.policy}"
    total = args.days * args.impressions_per_day
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        LogWriter(args.out, writer_id=f"sim-{args.policy}-{secrets.token_hex(3)}") as writer,
        tqdm(total=total, unit="imp", disable=args.no_progress, desc=f"sim {args.policy}") as bar,
    ):
        report = run_traffic(
            world,
            served,
            writer,
            start=args.start_date,
            days=args.days,
            impressions_per_day=args.impressions_per_day,
            task=args.task,
            deployment=args.deployment,
            arm=args.arm,
            model_version=model_version,
            seed=args.seed,
            after_day=cqr.observe,  # CQR keeps learning from the window even when not serving
            progress=bar.update,
        )
    traffic_s = time.perf_counter() - t0

    # One fixed sample (the day after the window) so the three numbers compare like with like.
    eval_day = args.start_date + timedelta(days=args.days)
    requests = world.sample_requests(eval_day, args.eval_requests, args.task)
    policies: dict[str, Callable[[Request], list[str]]] = {
        "annotator": AnnotatorPolicy(world.universe, seed=args.seed + 1),
        "cqr": cqr,
        "oracle": OraclePolicy(world),
    }
    evals = {
        name: statistics.fmean(world.true_list_ctr(r, policy(r)) for r in requests)
        for name, policy in policies.items()
    }
    seconds = time.perf_counter() - t0

    print(
        f"\n{'policy':<10} {'true CTR':>9}  (fixed sample: {len(requests)} requests of {eval_day})"
    )
    for name, ctr in evals.items():
        mark = "  <- served" if name == args.policy else ""
        print(f"{name:<10} {ctr:>9.4f}{mark}")
    print(
        f"traffic: {report.impressions} impressions, {report.clicks} clicks, true CTR "
        f"{report.true_ctr:.4f}, empirical CTR {report.empirical_ctr:.4f}, {traffic_s:.1f} s"
    )
    summary = {
        "policy": args.policy,
        "out": str(args.out),
        "start": args.start_date.isoformat(),
        "end": (args.start_date + timedelta(days=args.days)).isoformat(),
        "impressions": report.impressions,
        "clicks": report.clicks,
        "true_ctr": round(report.true_ctr, 5),
        "empirical_ctr": round(report.empirical_ctr, 5),
        "eval_true_ctr": {k: round(v, 5) for k, v in evals.items()},
        "seconds": round(seconds, 1),
    }
    print(json.dumps(summary))
    return 0
