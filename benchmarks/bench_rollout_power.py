"""How often a canary step decides, per statistical test: the always-valid mSPRT against the
horizon test (group-sequential up to the step's maxImpressions), on simulated steps.

Each run is one rollout step as the operator runs it: both arms gain impressions, the analysis
looks every ``--look-every`` impressions of the smaller arm and the step ends at the first
decision or once both arms reached ``--horizon`` (inconclusive). Prints, per true relative
lift, the share of runs each test passed (promoted), failed and left inconclusive, the mean
impressions per arm at the end, and the horizon test's pass rate over the mSPRT's (same run).
Lift 0 is the A/A case: its decided share is the false-decision rate (<= 1 - confidence).

    .venv/bin/python benchmarks/bench_rollout_power.py --plot docs/img/rollout-power.png

Defaults are the e2e's step (11% CTR, 5,000 impressions per arm, confidence 0.9, 50/50).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from gqr_operator.rollout.analysis import AnalysisConfig, ArmCounts, analyse


def simulate_step(
    rng: np.random.Generator,
    ctr_s: float,
    ctr_c: float,
    cfg: AnalysisConfig,
    horizon: int,
    share: float = 0.5,
    look_every: int = 100,
) -> tuple[str, int]:
    """One step: (decision: pass / fail / inconclusive, impressions of the smaller arm)."""
    big = round(look_every * max(share, 1 - share) / min(share, 1 - share))
    add_s, add_c = (look_every, big) if share > 0.5 else (big, look_every)
    n_s = n_c = x_s = x_c = 0
    while True:
        n_s, n_c = n_s + add_s, n_c + add_c
        x_s += int(rng.binomial(add_s, ctr_s))
        x_c += int(rng.binomial(add_c, ctr_c))
        decision = analyse(ArmCounts(n_s, x_s), ArmCounts(n_c, x_c), cfg).decision
        if decision != "wait":
            return decision, min(n_s, n_c)
        if min(n_s, n_c) >= horizon:
            return "inconclusive", min(n_s, n_c)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ctr", type=float, default=0.11, help="Stable CTR (0.11).")
    p.add_argument("--horizon", type=int, default=5000, help="maxImpressions per arm (5000).")
    p.add_argument("--min-impressions", type=int, default=1000, help="Per arm (1000).")
    p.add_argument("--confidence", type=float, default=0.9)
    p.add_argument("--share", type=float, default=0.5, help="Canary traffic share (0.5).")
    p.add_argument("--look-every", type=int, default=100, help="Impressions between looks.")
    p.add_argument("--lifts", default="0,0.05,0.08,0.13,0.2,0.3", help="True relative lifts.")
    p.add_argument("--runs", type=int, default=400, help="Simulated steps per lift and test.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", type=Path, default=None, help="PNG: pass rate against true lift.")
    args = p.parse_args()

    base = AnalysisConfig(confidence=args.confidence, min_impressions=args.min_impressions)
    tests = {"msprt": base, "horizon": replace(base, test="horizon", horizon=args.horizon)}
    lifts = [float(x) for x in args.lifts.split(",")]
    rng = np.random.default_rng(args.seed)
    print(
        f"stable CTR {args.ctr:.3f}, horizon {args.horizon} per arm, canary share "
        f"{args.share:.0%}, confidence {args.confidence}, a look every {args.look_every}, "
        f"{args.runs} runs each"
    )
    print(
        f"{'lift':>6}  {'test':8} {'pass':>6} {'fail':>6} {'inconcl':>8} {'imp/arm':>8}  "
        "horizon/msprt pass"
    )
    rates: dict[str, list[float]] = {t: [] for t in tests}
    for lift in lifts:
        for name, cfg in tests.items():
            runs = [
                simulate_step(
                    rng, args.ctr, args.ctr * (1 + lift), cfg, args.horizon, args.share,
                    args.look_every,
                )
                for _ in range(args.runs)
            ]  # fmt: skip
            share = {d: sum(r[0] == d for r in runs) / len(runs) for d in ("pass", "fail")}
            rates[name].append(share["pass"])
            mean_n = sum(r[1] for r in runs) / len(runs)
            ratio = ""
            if name == "horizon":
                ratio = f"x{share['pass'] / rates['msprt'][-1]:.2f}" if rates["msprt"][-1] else "-"
            print(
                f"{lift:>+6.0%}  {name:8} {share['pass']:>6.3f} {share['fail']:>6.3f} "
                f"{1 - share['pass'] - share['fail']:>8.3f} {mean_n:>8.0f}  {ratio}",
                flush=True,
            )
    if args.plot:
        from gqr_training.plots import figure

        with figure(args.plot, (6, 4), dpi=120) as ax:
            for name, ys in rates.items():
                ax.plot([100 * x for x in lifts], ys, marker="o", label=name)
            ax.axhline(
                1 - args.confidence,
                color="grey",
                lw=0.8,
                ls=":",
                label="1 - confidence (false decisions, both ways)",
            )
            ax.set_xlabel("true relative CTR lift of the canary (%)")
            ax.set_ylabel("share of steps promoted")
            ax.set_title(
                f"Canary step of {args.horizon} impressions per arm, CTR {args.ctr:.0%}, "
                f"confidence {args.confidence}",
                fontsize=9,
            )
            ax.legend()
            ax.grid(alpha=0.3)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
