"""``gqr demo``'s report: ``report.json`` (every number of the run), ``report.md`` (the tables a
reader looks at, printed too) and ``iterations.png`` (AEC and true CTR per DPO iteration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gqr_training.align.report import (
    iterations_table,
    plot_iterations,
    reward_hacking_warnings,
    write_json,
)


def demo_report(
    flags: dict[str, Any],
    oracle: float,
    annotator: dict[str, float],
    alignment: Any,
    ab: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The report's fields: the run's flags, the policies side by side (annotator, SFT = the
    iteration 0, the selected aligned iteration, the oracle), the A/B test and ``extra`` (COR,
    CTR artifact, stage timings) last."""
    iters = alignment.iterations
    sft, best = iters[0], iters[alignment.selected]
    gap = oracle - sft["true_ctr"]
    return {
        "command": "gqr demo " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in flags.items()),
        "args": flags,
        "oracle_true_ctr": oracle,
        "annotator": annotator,
        "sft": sft,
        "aligned": best,
        "selected_iteration": alignment.selected,
        "stopped": alignment.stopped,
        "iterations": iters,
        "true_ctr_lift": best["true_ctr"] / sft["true_ctr"] - 1 if sft["true_ctr"] else None,
        "aec_ratio": best["aec"] / sft["aec"] if sft["aec"] else None,
        "gap_closed": (best["true_ctr"] - sft["true_ctr"]) / gap if gap > 0 else None,
        "ab": ab,
        "warnings": reward_hacking_warnings(iters),
        **extra,
    }


def write(report: dict[str, Any], out: Path) -> None:
    """``report.json``, ``iterations.png`` and ``report.md`` under ``out``; prints the markdown."""
    write_json(out / "report.json", report)
    plot_iterations(report["iterations"], out / "iterations.png", report["oracle_true_ctr"])
    md = markdown(report, iterations_table(report["iterations"]))
    (out / "report.md").write_text(md)
    print(md)


def markdown(r: dict[str, Any], table: str) -> str:
    ab, lift = r["ab"], r["ab"]["lift"]
    arms = [k for k in ab if k != "lift"]
    lines = [
        "# GQR demo report",
        "",
        "| policy | AEC (CTR predictor) | true CTR |",
        "|---|---|---|",
        f"| annotator | {r['annotator']['aec']:.4f} | {r['annotator']['true_ctr']:.4f} |",
        f"| SFT | {r['sft']['aec']:.4f} | {r['sft']['true_ctr']:.4f} |",
        f"| IterDPO_ctr (iteration {r['selected_iteration']}) | {r['aligned']['aec']:.4f} | "
        f"{r['aligned']['true_ctr']:.4f} |",
        f"| oracle | | {r['oracle_true_ctr']:.4f} |",
        "",
        f"True CTR lift {fmt_pct(r['true_ctr_lift'])}, AEC x{fmt(r['aec_ratio'])}, "
        f"gap to the oracle closed {fmt_pct(r['gap_closed'])}. Stopped: {r['stopped']}.",
        "",
        "## Iterations",
        "",
        table,
        "",
        "## A/B test",
        "",
        "| arm | impressions | clicked | empirical CTR | true CTR |",
        "|---|---|---|---|---|",
        *[
            f"| {a} | {ab[a]['impressions']} | {ab[a]['clicked']} | {ab[a]['ctr']:.4f} | "
            f"{ab[a]['true_ctr']:.4f} |"
            for a in arms
        ],
        "",
        f"Lift {lift['absolute']:+.4f} (95% CI {lift['absolute_ci95'][0]:+.4f} .. "
        f"{lift['absolute_ci95'][1]:+.4f}); relative {fmt_pct(lift['relative'])} "
        f"(95% CI {fmt_pct(lift['relative_ci95'][0])} .. {fmt_pct(lift['relative_ci95'][1])}); "
        f"CI excludes zero: {lift['ci_excludes_zero']}.",
        "",
        *(
            [f"**{w}**" for w in r["warnings"]]
            or ["No reward hacking seen (AEC and true CTR moved together)."]
        ),
        "",
        f"COR: {r['cor']}. Wall time {r['wall_s']:.0f}s: "
        + ", ".join(f"{k} {v:.0f}s" for k, v in r["stages_s"].items()),
        "",
    ]
    return "\n".join(lines)


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:+.1f}%"
