"""Throughput of the simulated world: request sampling, click probabilities, the oracle and a
traffic run without a log store. Prints numbers; asserts nothing.

    .venv/bin/python benchmarks/bench_sim.py
"""

from __future__ import annotations

import time
from datetime import date

from gqr_training.sim import AnnotatorPolicy, World
from gqr_training.sim.traffic import run_traffic


def main() -> None:
    world = World(seed=0)
    annotator = AnnotatorPolicy(world.universe)
    t = time.perf_counter()
    requests = world.sample_requests(date(2025, 1, 1), 20_000)
    print(f"sample_requests   {20_000 / (time.perf_counter() - t):>10,.0f} requests/s")
    lists = [annotator(r) for r in requests]
    t = time.perf_counter()
    for r, q in zip(requests, lists, strict=True):
        world.true_click_probs(r, q)
    print(f"true_click_probs  {20_000 / (time.perf_counter() - t):>10,.0f} lists/s")
    t = time.perf_counter()
    for r in requests[:1000]:
        world.oracle_list(r)
    print(f"oracle_list       {1000 / (time.perf_counter() - t):>10,.0f} requests/s")
    t = time.perf_counter()
    report = run_traffic(
        world, annotator, None, start=date(2025, 1, 1), days=2, impressions_per_day=15_000
    )
    rate = report.impressions / (time.perf_counter() - t)
    print(f"run_traffic       {rate:>10,.0f} impressions/s (no log store)")


if __name__ == "__main__":
    main()
