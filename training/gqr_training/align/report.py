"""Reports of an alignment run: the reward-hacking guard (AEC up while true CTR down), the
per-iteration markdown table, and the AEC / true-CTR plot (PNG)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def reward_hacking_warnings(iterations: Sequence[dict[str, float]]) -> list[str]:
    """One loud line per iteration whose AEC rose while its true CTR fell."""
    out = []
    for prev, cur in itertools.pairwise(iterations):
        if "true_ctr" not in cur or "true_ctr" not in prev:
            continue
        if cur["aec"] > prev["aec"] and cur["true_ctr"] < prev["true_ctr"]:
            out.append(
                f"REWARD HACKING? iteration {cur['iteration']:.0f}: AEC rose "
                f"{prev['aec']:.4f} -> {cur['aec']:.4f} while the TRUE CTR fell "
                f"{prev['true_ctr']:.4f} -> {cur['true_ctr']:.4f}"
            )
    return out


COLUMNS = [
    ("iteration", "iter", "{:.0f}"),
    ("aec", "AEC", "{:.4f}"),
    ("true_ctr", "true CTR", "{:.4f}"),
    ("pairs_pairs", "pairs", "{:.0f}"),
    ("overlap_dropped", "filter drops", "{:.0f}"),
    ("pairs_mean_chosen_len", "chosen len", "{:.1f}"),
    ("pairs_mean_rejected_len", "rejected len", "{:.1f}"),
    ("mean_response_chars", "resp chars", "{:.1f}"),
    ("llm_full_lists", "model full lists", "{:.2f}"),
    ("distinct_2", "distinct-2", "{:.3f}"),
    ("relatedness", "related", "{:.3f}"),
    ("exclusivity", "exclusive", "{:.3f}"),
    ("seconds", "s", "{:.0f}"),
]


def iterations_table(iterations: Sequence[dict[str, float]]) -> str:
    head = "| " + " | ".join(c[1] for c in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    rows = [
        "| " + " | ".join(fmt.format(m[k]) if k in m else "" for k, _, fmt in COLUMNS) + " |"
        for m in iterations
    ]
    return "\n".join([head, rule, *rows])


def plot_iterations(
    iterations: Sequence[dict[str, float]], path: str | Path, oracle: float | None = None
) -> Path:
    """AEC and true CTR per iteration (iteration 0 = the SFT policy) in one PNG."""
    from gqr_training.plots import figure

    xs = [m["iteration"] for m in iterations]
    out = Path(path)
    with figure(out, (6, 4)) as ax:
        ax.plot(xs, [m["aec"] for m in iterations], "o-", label="AEC (CTR predictor)")
        if all("true_ctr" in m for m in iterations):
            true_ctr = [m["true_ctr"] for m in iterations]
            ax.plot(xs, true_ctr, "s-", label="true CTR (simulated world)")
        if oracle is not None:
            ax.axhline(oracle, linestyle="--", color="gray", label="oracle true CTR")
        ax.set_xlabel("DPO iteration (0 = SFT)")
        ax.set_ylabel("list CTR")
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        ax.legend()
    return out


def write_json(path: str | Path, report: dict[str, Any]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return out
