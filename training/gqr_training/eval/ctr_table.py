"""Reproduce the paper's Table 2 (CTR predictor: backbones x variants) on simulated logs, with
an ORACLE row computed from the world's true click probabilities on the same test impressions.

    gqr sim --policy annotator --days 14 --out /tmp/ctrtable/logs
    python -m gqr_training.eval.ctr_table --logs /tmp/ctrtable/logs --out /tmp/ctrtable/out \\
        --backbones bert,albert,roberta --variants base,pid,ctx --max-train-impressions 60000

The logs are read once; each model trains on the first days and is evaluated on the held-out
last day (as ``ctr-train`` does). Writes table2.md, table2.json and reliability.png to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gqr_training.ctr.data import LoggedImpression, instances


def oracle_probs(
    impressions: Sequence[LoggedImpression],
    world_seed: int = 0,
    with_user: bool = True,
    with_context: bool = True,
) -> list[float]:
    """True p_k of every (impression, k) instance, in ``instances()`` order.

    ``with_user=False`` drops the hidden per-user click propensity: the best a predictor that
    sees only the texts could do. ``with_context=False`` also drops the redundancy effect of
    the queries shown above: the best a predictor blind to them (``pid``) could do; the
    difference is what ``ctx`` can gain."""
    from dataclasses import replace

    from gqr_training.sim import TASKS, ClickParams, Request, World

    params = ClickParams() if with_user else replace(ClickParams(), user_sigma=0.0)
    if not with_context:
        params = replace(params, redundancy=0.0)
    world = World(world_seed, params)
    out: list[float] = []
    for imp in impressions:
        spec = TASKS.get(imp.task, TASKS["suggestion"])
        req = Request(
            task=imp.task,
            session_id=imp.session_id,
            user_key=imp.user_key,
            query=imp.query,
            history=imp.history,
            ai_response=None,
            ts=imp.ts,
            n_queries=len(imp.queries),
            component=spec.component,
        )
        out.extend(world.true_click_probs(req, list(imp.queries)))
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backbone | variant | AUC | logloss | AUC text only | logloss text only | diff_ctr "
        "| ECE | epochs | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f4(x: Any) -> str:
        return "-" if x is None else f"{x:.4f}"

    for r in rows:
        lines.append(
            f"| {r['backbone']} | {r['variant']} | {r['auc']:.4f} | {r['logloss']:.4f} | "
            f"{f4(r.get('auc_text_only'))} | {f4(r.get('logloss_text_only'))} | "
            f"{r['diff_ctr']:.4f} | {r['ece']:.4f} | {r.get('epochs', '-')} | "
            f"{r.get('seconds', '-')} |"
        )
    return "\n".join(lines) + "\n"


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logs", required=True, help="Simulated log store (gqr sim --out).")
    p.add_argument("--out", required=True, type=Path, help="Report folder.")
    p.add_argument("--backbones", default="bert,albert,roberta")
    p.add_argument("--variants", default="base,pid,ctx")
    p.add_argument("--world-seed", type=int, default=0, help="The --seed given to gqr sim.")
    p.add_argument("--window-days", type=int, default=14)
    p.add_argument("--end", default="latest")
    p.add_argument("--max-train-impressions", type=int, default=None)
    p.add_argument("--epochs", type=int, default=6)  # ctr-train's defaults throughout
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=256)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--patience", type=int, default=2, help="Epochs without held-out logloss gain to stop."
    )
    p.add_argument(
        "--negative-rate",
        type=float,
        default=0.1,
        help="Share of unclicked instances kept per epoch (predictions corrected for it) (0.1).",
    )
    p.add_argument(
        "--match-embedding",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Exact-match embedding (ctr-train's default); --no-match-embedding: paper's input.",
    )
    p.add_argument(
        "--user-propensity",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Per-user click multipliers (ctr-train's default); the text-only columns show "
        "each model without them.",
    )
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast on cuda).")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    from gqr_training.ctr import evaluate as ev
    from gqr_training.ctr import train

    args = make_parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    base_argv = [
        "--logs",
        args.logs,
        "--out",
        str(args.out / "artifacts"),
        "--window-days",
        str(args.window_days),
        "--end",
        args.end,
        "--epochs",
        str(args.epochs),
        "--layers",
        str(args.layers),
        "--hidden",
        str(args.hidden),
        "--heads",
        str(args.heads),
        "--device",
        args.device,
        "--intermediate",
        str(args.intermediate),
        "--max-length",
        str(args.max_length),
        "--batch-size",
        str(args.batch_size),
        "--lr",
        str(args.lr),
        "--patience",
        str(args.patience),
        "--negative-rate",
        str(args.negative_rate),
        "--match-embedding" if args.match_embedding else "--no-match-embedding",
        "--user-propensity" if args.user_propensity else "--no-user-propensity",
    ]
    if args.max_train_impressions:
        base_argv += ["--max-train-impressions", str(args.max_train_impressions)]
    if args.threads:
        base_argv += ["--threads", str(args.threads)]
    if args.no_progress:
        base_argv.append("--no-progress")
    t0 = time.perf_counter()
    data = train.read_data(train.make_parser().parse_args(base_argv))
    print(f"read {data.stats} in {time.perf_counter() - t0:.0f} s", flush=True)
    _, labels = instances(data.test)
    groups = ev.time_slices(len(labels), 4)
    oracle = oracle_probs(data.test, args.world_seed)
    rows: list[dict[str, Any]] = []
    best: tuple[float, str, list[float]] = (-1.0, "", [])
    for backbone in args.backbones.split(","):
        for variant in args.variants.split(","):
            t1 = time.perf_counter()
            run_args = train.make_parser().parse_args(
                [
                    *base_argv,
                    "--backbone",
                    backbone,
                    "--variant",
                    variant,
                    "--version",
                    f"{backbone}-{variant}",
                ]
            )
            outcome = train.run(run_args, data)
            m = ev.evaluate(outcome.test_labels, outcome.test_probs, groups)
            row = {
                "backbone": backbone,
                "variant": variant,
                **m,
                "auc_text_only": outcome.metrics.get("auc_text_only"),
                "logloss_text_only": outcome.metrics.get("logloss_text_only"),
                "epochs": int(outcome.metrics["epochs_run"]),
                "seconds": round(time.perf_counter() - t1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if m["auc"] > best[0]:
                best = (m["auc"], f"{backbone}/{variant}", outcome.test_probs)
            (args.out / "table2.md").write_text(markdown(rows))
    text_only = oracle_probs(data.test, args.world_seed, with_user=False)
    rows.append({"backbone": "ORACLE", "variant": "true p", **ev.evaluate(labels, oracle, groups)})
    rows.append(
        {"backbone": "ORACLE", "variant": "text-only", **ev.evaluate(labels, text_only, groups)}
    )
    blind = oracle_probs(data.test, args.world_seed, with_user=False, with_context=False)
    rows.append(
        {
            "backbone": "ORACLE",
            "variant": "text-only, no context",
            **ev.evaluate(labels, blind, groups),
        }
    )
    table = markdown(rows)
    (args.out / "table2.md").write_text(table)
    summary = {
        "rows": rows,
        "data": data.stats,
        "held_out_day": data.held_out_day.isoformat(),
        "best": best[1],
        "seconds": round(time.perf_counter() - t0),
    }
    (args.out / "table2.json").write_text(json.dumps(summary, indent=2) + "\n")
    ev.plot_reliability(
        {best[1]: (labels, best[2]), "oracle": (labels, oracle)}, args.out / "reliability.png"
    )
    sys.stdout.write(table)
    print(
        json.dumps(
            {
                "table": str(args.out / "table2.md"),
                "best": best[1],
                "best_auc": best[0],
                "oracle_auc": next(
                    r["auc"] for r in rows if (r["backbone"], r["variant"]) == ("ORACLE", "true p")
                ),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
