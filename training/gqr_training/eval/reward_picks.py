"""How well does a CTR predictor pick among the policy's OWN candidates? (the question that
decides how far CTR-guided alignment can go, which AUC on logged lists does not answer).

    python -m gqr_training.eval.reward_picks --demo ./gqr-demo [--ctr ARTIFACT] [--model DIR]

For each test request of a finished demo, the policy (default: the demo's SFT model) samples
C next-query candidates at each position, as CTR-guided beam search does (one beam: the
predictor's pick is kept and the next position is sampled after it). Per position it prints
the TRUE click probability of the predictor's pick, of the best candidate and of an average
one, and, per kind of candidate (the world's factors: a word the world does not know, a
near-copy, a bare topic, another topic, too many refinements, an aspect already shown above),
the mean predicted vs true probability: where the predictor is fooled. Writes
``reward_picks.json`` and a bar plot ``reward_picks.png``. The world is used for evaluation
only, as in every ``gqr_training.eval`` table.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gqr_training.cliconfig import ConfigParser, at_least, validate

WHOLE = at_least(1, "a whole number")


@dataclass(kw_only=True)
class RewardPicksConfig:
    """What ``reward-picks`` is told: the demo folder, the predictor and policy, the sizes."""

    demo: Path = field(default=Path("gqr-demo"), metadata={"help": "A finished demo folder."})
    ctr: Path | None = field(default=None, metadata={"help": "CTR artifact (default: the demo's)."})
    model: Path | None = field(
        default=None, metadata={"help": "Policy folder (default: the demo's SFT)."}
    )
    requests: int = field(default=200, metadata={"help": "Test requests (200).", "rule": WHOLE})
    candidates: int = field(
        default=16, metadata={"help": "Samples per position (16).", "rule": WHOLE}
    )
    threads: int = field(default=1, metadata={"help": "torch CPU threads (1).", "rule": WHOLE})
    out: Path | None = field(
        default=None, metadata={"help": "JSON report (default: <demo>/reward_picks.json)."}
    )

    def __post_init__(self) -> None:
        validate(self)


def make_parser() -> ConfigParser[RewardPicksConfig]:
    return ConfigParser(
        RewardPicksConfig, prog="reward-picks", description=__doc__.split("\n\n")[0]
    )


def kinds(world: Any, query: str, q: str, above: list[str]) -> list[str]:
    """The world's verdict on candidate ``q`` (evaluation only)."""
    from gqr_training.sim import _clickmodel as cm

    uni, params = world.universe, world.params
    u, p = uni.parse(query), uni.parse(q)
    tags = []
    if p.n_unknown:
        tags.append("unknown word")
    nov = cm.novelty(u, p, params)
    if nov < params.novelty_modifier_only:
        tags.append("near-copy")
    elif nov < 1:
        tags.append("modifiers only")
    if cm.relatedness(u, p, uni, params) < 1:
        tags.append("other topic / generic")
    if p.specificity > params.spec_cap:
        tags.append("over-specific")
    if p.specificity == 0:
        tags.append("bare topic")
    if above and cm.redundancy_factor(p, [uni.parse(a) for a in above], params) < 0.5:
        tags.append("same aspect as above")
    return tags or ["clean"]


def run(args: RewardPicksConfig) -> dict[str, Any]:
    import torch

    from gqr_training.align import tinylm
    from gqr_training.align.data import make_task, prefix_text, valid_next
    from gqr_training.align.generate import HFEngine, next_query_candidates
    from gqr_training.ctr.scorer import CTRScorer
    from gqr_training.demo import open_demo, world_request

    torch.set_num_threads(args.threads)
    demo = open_demo(args.demo)
    world, preset, cor = demo.world, demo.preset, demo.cor
    ctr_path = args.ctr or Path(demo.report["ctr_artifact"])
    scorer = CTRScorer.load(ctr_path)
    model, tok = tinylm.load(args.model or args.demo / "llm" / "sft")
    engine = HFEngine(model, tok, seed=3)
    reqs = world.sample_requests(demo.day(1), args.requests)
    tasks = [make_task(preset, world_request(r, cor)) for r in reqs]
    chosen: list[list[str]] = [[] for _ in tasks]
    positions = []
    for pos in range(min(t.n_queries for t in tasks)):
        texts = [t.prompt + prefix_text(c) for t, c in zip(tasks, chosen, strict=True)]
        conts = next_query_candidates(engine, texts, args.candidates, (0.7, 1.0), 16)
        by_kind: dict[str, list[list[float]]] = defaultdict(lambda: [[], []])
        pick, best, mean = [], [], []
        for r, t, pre, cs in zip(reqs, tasks, chosen, conts, strict=True):
            cs = list(dict.fromkeys(q for q in cs if valid_next(preset, t, pre, q)))
            if not cs or len(pre) < pos:  # no usable candidate here or at an earlier position
                continue
            pred = [p[pos] for p in scorer.score_batch([(r.query, [*pre, q]) for q in cs])]
            true = [world.true_click_probs(r, [*pre, q])[pos] for q in cs]
            for q, a, b in zip(cs, pred, true, strict=True):
                for k in kinds(world, r.query, q, pre):
                    by_kind[k][0].append(a)
                    by_kind[k][1].append(b)
            i = max(range(len(cs)), key=pred.__getitem__)
            pick.append(true[i])
            best.append(max(true))
            mean.append(statistics.fmean(true))
            pre.append(cs[i])
        stats = {
            k: {"n": len(a), "predicted": statistics.fmean(a), "true": statistics.fmean(b)}
            for k, (a, b) in sorted(by_kind.items(), key=lambda kv: -len(kv[1][0]))
        }
        row: dict[str, Any] = {
            "position": pos + 1,
            "requests": len(pick),
            "true_p_of_pick": statistics.fmean(pick) if pick else 0.0,
            "true_p_of_best": statistics.fmean(best) if best else 0.0,
            "true_p_mean": statistics.fmean(mean) if mean else 0.0,
            "kinds": stats,
        }
        positions.append(row)
        print(
            f"position {pos + 1}: true p of the predictor's pick {row['true_p_of_pick']:.4f}, "
            f"of the best candidate {row['true_p_of_best']:.4f}, average candidate "
            f"{row['true_p_mean']:.4f}",
            flush=True,
        )
        for k, v in stats.items():
            ratio = v["predicted"] / v["true"] if v["true"] else float("inf")
            print(
                f"  {k:22s} n={v['n']:5d}  predicted {v['predicted']:.4f}  true {v['true']:.4f}"
                f"  x{ratio:.2f}"
            )
    out = {"ctr": str(ctr_path), "candidates": args.candidates, "positions": positions}
    path = args.out or args.demo / "reward_picks.json"
    path.write_text(json.dumps(out, indent=2))
    _plot(positions, path.with_suffix(".png"))
    return out


def _plot(positions: list[dict[str, Any]], path: Path) -> None:
    """Bars per position: true p of the predictor's pick, of the best and of an average
    candidate."""
    from gqr_training.plots import figure

    bars = (("true_p_mean", "average candidate"), ("true_p_of_pick", "predictor's pick"),
            ("true_p_of_best", "best candidate"))  # fmt: skip
    with figure(path, (6, 3.5)) as ax:
        for j, (key, label) in enumerate(bars):
            xs = [row["position"] + (j - 1) * 0.27 for row in positions]
            ax.bar(xs, [row[key] for row in positions], 0.27, label=label)
        ax.set_xticks([row["position"] for row in positions])
        ax.set_xlabel("position")
        ax.set_ylabel("true click probability")
        ax.legend()


def main(argv: list[str] | None = None) -> int:
    run(make_parser().parse_config(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
