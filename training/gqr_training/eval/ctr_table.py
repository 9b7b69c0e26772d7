"""Reproduce the paper's Table 2 (CTR predictor: backbones x variants) on simulated logs, with
an ORACLE row computed from the world's true click probabilities on the same test impressions.

    gqr sim --policy annotator --days 14 --out /tmp/ctrtable/logs
    python -m gqr_training.eval.ctr_table --logs /tmp/ctrtable/logs --out /tmp/ctrtable/out \\
        --backbones bert,albert,roberta --variants base,pid,ctx --max-train-impressions 60000

The logs are read once; each model trains on the first days and is evaluated on the held-out
last day (as ``ctr-train`` does). Writes table2.md, table2.json and reliability.png to --out.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gqr_training.cliconfig import ConfigParser, Rule, like, validate
from gqr_training.ctr.data import LoggedImpression, instances
from gqr_training.ctr.inputs import VARIANTS, check_variant
from gqr_training.ctr.train_config import BACKBONES, CTRTrainConfig


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


def one_each(names: Sequence[str]) -> Rule:
    return Rule(
        lambda v: all(x in names for x in v.split(",")),
        f"expected comma-separated names of {', '.join(names)}",
    )


@dataclass(kw_only=True)
class CTRTableConfig:
    """Everything the Table 2 command is told: the logs, the grid, and the ``ctr-train`` knobs
    every model of the grid shares (ctr-train's defaults throughout)."""

    logs: str = field(metadata={"help": "Simulated log store (gqr sim --out)."})
    out: Path = field(metadata={"help": "Report folder."})
    backbones: str = field(
        default="bert,albert,roberta",
        metadata={"help": "Comma-separated backbones (all three).", "rule": one_each(BACKBONES)},
    )
    variants: str = field(
        default="base,pid,ctx",
        metadata={
            "help": "Comma-separated input variants (all three).",
            "rule": one_each(VARIANTS),
        },
    )
    world_seed: int = field(default=0, metadata={"help": "The --seed given to gqr sim."})
    window_days: int = like(CTRTrainConfig, "window_days")
    end: str = field(
        default="latest", metadata={"help": "Window end (latest: the logs' last day)."}
    )
    max_train_impressions: int | None = like(CTRTrainConfig, "max_train_impressions")
    epochs: int = like(CTRTrainConfig, "epochs")
    layers: int = like(CTRTrainConfig, "layers")
    hidden: int = like(CTRTrainConfig, "hidden")
    heads: int = like(CTRTrainConfig, "heads")
    intermediate: int = like(CTRTrainConfig, "intermediate")
    max_length: int = like(CTRTrainConfig, "max_length")
    batch_size: int = like(CTRTrainConfig, "batch_size")
    lr: float = like(CTRTrainConfig, "lr")
    patience: int = like(CTRTrainConfig, "patience")
    negative_rate: float = like(CTRTrainConfig, "negative_rate")
    match_embedding: bool = like(
        CTRTrainConfig,
        "match_embedding",
        help="Exact-match embedding (ctr-train's default); --no-match-embedding: paper's input.",
    )
    user_propensity: bool = like(
        CTRTrainConfig,
        "user_propensity",
        help="Per-user click multipliers (ctr-train's default); the text-only columns show each "
        "model without them.",
    )
    threads: int | None = like(CTRTrainConfig, "threads")
    device: str = like(CTRTrainConfig, "device")
    no_progress: bool = like(CTRTrainConfig, "no_progress")

    def __post_init__(self) -> None:
        validate(self)

    def ctr_train(self, backbone: str = "bert", variant: str = "ctx") -> CTRTrainConfig:
        """The ``ctr-train`` run of one cell of the grid: this table's copies of its flags
        (the defaults: the one that reads the logs)."""
        train = {f.name for f in fields(CTRTrainConfig)}
        shared = {f.name: getattr(self, f.name) for f in fields(self) if f.name in train}
        return CTRTrainConfig(
            **{**shared, "out": str(self.out / "artifacts")},
            version=f"{backbone}-{variant}",
            backbone=backbone,
            variant=check_variant(variant),
        )


def make_parser() -> ConfigParser[CTRTableConfig]:
    return ConfigParser(CTRTableConfig, prog="ctr-table", description=__doc__.split("\n\n")[0])


def train_rows(cfg: CTRTableConfig, data: Any, groups: Any) -> tuple[list[dict[str, Any]], Any]:
    """One row per backbone x variant, each trained by ``ctr-train`` on ``data``; returns the
    rows and ``(auc, name, held-out probabilities)`` of the best."""
    from gqr_training.ctr import evaluate as ev
    from gqr_training.ctr import train

    rows: list[dict[str, Any]] = []
    best: tuple[float, str, list[float]] = (-1.0, "", [])
    for backbone in cfg.backbones.split(","):
        for variant in cfg.variants.split(","):
            t1 = time.perf_counter()
            outcome = train.run(cfg.ctr_train(backbone, variant), data)
            assert outcome is not None  # one process: rank 0's outcome
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
            (cfg.out / "table2.md").write_text(markdown(rows))
    return rows, best


def oracle_rows(
    test: Sequence[LoggedImpression], labels: list[int], groups: Any, seed: int
) -> tuple[list[dict[str, Any]], list[float]]:
    """The world's own probabilities, then without the user propensity, then also without the
    context of the queries above; returns the rows and the true probabilities."""
    from gqr_training.ctr import evaluate as ev

    oracle = oracle_probs(test, seed)
    text_only = oracle_probs(test, seed, with_user=False)
    blind = oracle_probs(test, seed, with_user=False, with_context=False)
    rows = [
        {"backbone": "ORACLE", "variant": "true p", **ev.evaluate(labels, oracle, groups)},
        {"backbone": "ORACLE", "variant": "text-only", **ev.evaluate(labels, text_only, groups)},
        {
            "backbone": "ORACLE",
            "variant": "text-only, no context",
            **ev.evaluate(labels, blind, groups),
        },
    ]
    return rows, oracle


def main(argv: list[str] | None = None) -> int:
    from gqr_training.ctr import evaluate as ev
    from gqr_training.ctr import train

    cfg = make_parser().parse_config(argv)
    cfg.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = train.read_data(cfg.ctr_train())
    print(f"read {data.stats} in {time.perf_counter() - t0:.0f} s", flush=True)
    _, labels = instances(data.test)
    groups = ev.time_slices(len(labels), 4)
    rows, best = train_rows(cfg, data, groups)
    oracles, oracle = oracle_rows(data.test, labels, groups, cfg.world_seed)
    rows += oracles
    table = markdown(rows)
    (cfg.out / "table2.md").write_text(table)
    summary = {
        "rows": rows,
        "data": data.stats,
        "held_out_day": data.held_out_day.isoformat(),
        "best": best[1],
        "seconds": round(time.perf_counter() - t0),
    }
    (cfg.out / "table2.json").write_text(json.dumps(summary, indent=2) + "\n")
    ev.plot_reliability(
        {best[1]: (labels, best[2]), "oracle": (labels, oracle)}, cfg.out / "reliability.png"
    )
    sys.stdout.write(table)
    last = {"table": str(cfg.out / "table2.md"), "best": best[1], "best_auc": best[0]}
    print(json.dumps({**last, "oracle_auc": oracles[0]["auc"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
