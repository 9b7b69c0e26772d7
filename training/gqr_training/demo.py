"""``gqr demo``: the whole GQR loop on the simulated world, on one machine, from nothing.

    gqr demo --out ./gqr-demo                  # tiny LM from scratch, CPU, < 15 minutes
    gqr demo --model /models/qwen2.5-0.5b --device cuda --out ./gqr-demo-real

1. 14 days of traffic from the annotator policy into a local log store (the first logs come
   from the annotation-quality policy that the SFT model then imitates: generating 14 days of
   lists with the LLM itself would spend the CPU budget on traffic, not on learning);
2. COR: successor counts of the logged sessions (``query -> most frequent next queries``);
3. the CTR predictor trained on the impression/click logs (``gqr_training.ctr``);
4. SFT of the LLM on annotator lists rendered by the universal prompt (with COR);
5. iterative DPO with the CTR predictor as the reward (AEC), the true CTR measured beside it;
6. a simulated A/B test (stable = SFT, canary = aligned) with a confidence interval on the lift.

This orchestrator is the only place that holds both the world and the learners: it passes
plain data (prompt requests, a scorer, a true-CTR callback) into ``gqr_training.align``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gqr_serving.prompt import PromptRequest

START = date(2025, 1, 1)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gqr demo", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--out", type=Path, default=Path("gqr-demo"), help="Output folder (./gqr-demo).")
    a("--model", default=None, help="Local LLM folder; default: a tiny LM built from scratch.")
    a("--device", default="cpu", help="cpu or cuda.")
    a("--seed", type=int, default=0, help="World seed (0).")
    a("--days", type=int, default=14, help="Days of logged traffic (14).")
    a("--impressions-per-day", type=int, default=10000, help="Logged impressions a day (10000).")
    a("--sft-requests", type=int, default=2000, help="Annotated requests for SFT (2000).")
    a("--sft-epochs", type=float, default=2.0, help="SFT epochs (2).")
    a("--train-prompts", type=int, default=320, help="DPO prompts per iteration (320).")
    a("--test-prompts", type=int, default=300, help="Fixed AEC test set size (300).")
    a("--max-iterations", type=int, default=3, help="Most DPO iterations (3).")
    a("--delta", type=float, default=0.005, help="Stop when AEC gains less (0.005).")
    a("--ab-requests", type=int, default=16000, help="A/B requests, both arms together (16000).")
    a("--ctr-epochs", type=int, default=6, help="CTR predictor epochs (6).")
    a("--ctr-hidden", type=int, default=64, help="CTR encoder width (64).")
    a("--ctr-layers", type=int, default=2, help="CTR encoder layers (2).")
    a("--ctr-heads", type=int, default=2, help="CTR encoder attention heads (2).")
    a(
        "--ctr-negative-rate",
        type=float,
        default=0.1,
        help="Share of non-clicked examples the CTR predictor sees per epoch (0.1; corrected).",
    )
    a(
        "--ctr-impressions",
        type=int,
        default=None,
        help="Latest logged impressions the CTR predictor trains on (default: all).",
    )
    a("--dpo-lr", type=float, default=5e-4, help="DPO learning rate (5e-4).")
    a("--dpo-epochs", type=float, default=2.0, help="Passes over each round's pairs (2).")
    a(
        "--sft-weight",
        type=float,
        default=3.0,
        help="NLL term on the chosen response beside DPO's loss (RPO; 0 = pure DPO) (3.0).",
    )
    a("--candidates", type=int, default=8, help="C: next-query samples per beam (8).")
    a("--pairs-per-prompt", type=int, default=1, help="Eq. 6 pairs kept per prompt (1).")
    a(
        "--max-length-gap",
        type=_gap,
        default=0.1,
        help="Longest relative length difference inside a DPO pair (0.1; 'none').",
    )
    a(
        "--beam-temperatures",
        type=_floats,
        default=(0.7, 1.0),
        help="Temperatures the C samples are spread over (0.7,1.0).",
    )
    a(
        "--rejected-temperature",
        type=float,
        default=1.0,
        help="Temperature of the N_r random responses (1.0).",
    )
    a("--lora", action="store_true", help="LoRA for SFT and DPO instead of full weights.")
    a("--overlap", choices=["token", "embedding", "none"], default="token")
    a(
        "--threads",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="torch CPU threads (default: the machine's cores, at most 4).",
    )
    a("--no-progress", action="store_true", help="Hide progress bars.")


def _floats(value: str) -> tuple[float, ...]:
    from gqr_training.align.iterate import parse_floats

    return parse_floats(value)


def _gap(value: str) -> float | None:
    from gqr_training.align.iterate import parse_gap

    return parse_gap(value)


class Clock:
    """Wall time per stage, printed as it goes."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.stages: dict[str, float] = {}
        self._last = self.t0

    def lap(self, name: str) -> None:
        now = time.time()
        self.stages[name] = round(now - self._last, 1)
        self._last = now
        print(f"[{now - self.t0:6.0f}s] {name} done in {self.stages[name]:.0f}s", flush=True)

    @property
    def total(self) -> float:
        return round(time.time() - self.t0, 1)


def successor_table(sessions: Any, top: int = 5) -> Callable[[str], list[str]]:
    """COR fallback: the most frequent next queries of a query in the logged sessions, backing
    off to queries that share the first two words."""
    nxt: dict[str, Counter[str]] = defaultdict(Counter)
    by_prefix: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for _, records in sessions:
        qs = [r.query for r in records]
        for q, n in itertools.pairwise(qs):
            if q != n:
                nxt[q][n] += 1
                by_prefix[tuple(q.split()[:2])][n] += 1

    def lookup(query: str) -> list[str]:
        found = nxt.get(query) or by_prefix.get(tuple(query.split()[:2])) or Counter()
        return [q for q, _ in found.most_common(top + 1) if q != query][:top]

    return lookup


def ab_test(
    world: Any,
    requests: Sequence[Any],
    arms: dict[str, Callable[[Sequence[Any]], list[list[str]]]],
    seed: int = 0,
) -> dict[str, Any]:
    """Split requests 50/50 by user; show each arm's lists; compare empirical CTR (clicked
    impressions / impressions) with a 95% normal CI on the absolute and relative lift."""
    rng = random.Random(f"ab:{seed}")
    names = list(arms)
    split: dict[str, list[Any]] = {n: [] for n in names}
    for r in requests:
        bucket = hashlib.sha256(f"{seed}:{r.user_key}".encode()).digest()[0] % 2
        split[names[bucket if len(names) == 2 else 0]].append(r)
    out: dict[str, Any] = {}
    for name, reqs in split.items():
        lists = arms[name](reqs)
        clicked = [
            bool(world.show(r, q, rng)) if q else False for r, q in zip(reqs, lists, strict=True)
        ]
        true = [world.true_list_ctr(r, q) if q else 0.0 for r, q in zip(reqs, lists, strict=True)]
        out[name] = {
            "impressions": len(reqs),
            "clicked": sum(clicked),
            "ctr": sum(clicked) / max(1, len(reqs)),
            "true_ctr": sum(true) / max(1, len(reqs)),
        }
    a, b = (out[n] for n in names)
    diff = b["ctr"] - a["ctr"]
    se = math.sqrt(
        a["ctr"] * (1 - a["ctr"]) / max(1, a["impressions"])
        + b["ctr"] * (1 - b["ctr"]) / max(1, b["impressions"])
    )
    rel = diff / a["ctr"] if a["ctr"] else float("nan")
    # Delta method for the ratio b/a.
    se_rel = (
        (b["ctr"] / a["ctr"])
        * math.sqrt((1 - a["ctr"]) / max(1, a["clicked"]) + (1 - b["ctr"]) / max(1, b["clicked"]))
        if a["clicked"] and b["clicked"]
        else float("nan")
    )
    out["lift"] = {
        "absolute": diff,
        "absolute_ci95": [diff - 1.96 * se, diff + 1.96 * se],
        "relative": rel,
        "relative_ci95": [rel - 1.96 * se_rel, rel + 1.96 * se_rel],
        "ci_excludes_zero": diff - 1.96 * se > 0 or diff + 1.96 * se < 0,
    }
    return out


@dataclass(frozen=True)
class DemoFolder:
    """A finished ``gqr demo`` folder as the tools that reuse it open it (``gqr align-table``,
    ``reward_picks``, the benchmarks): its report, the arguments it ran with, the world it
    simulated, the task preset and the COR of its logs."""

    path: Path
    report: dict[str, Any]
    args: dict[str, Any]
    world: Any
    preset: Any
    cor: Callable[[str], list[str]]

    def day(self, after_window: int) -> date:
        """The day ``after_window`` days after the logged window (1: the test set's day, 2: the
        A/B's)."""
        return START + timedelta(days=int(self.args.get("days", 14)) + after_window)


def open_demo(path: Path) -> DemoFolder:
    from gqr_serving.logstore import LogReader
    from gqr_serving.prompt import load_preset
    from gqr_training.sim import World

    report = json.loads((path / "report.json").read_text())
    args = report.get("args", {})
    return DemoFolder(
        path=path,
        report=report,
        args=args,
        world=World(int(args.get("seed", 0))),
        preset=load_preset("suggestion"),
        cor=successor_table(LogReader(str(path / "logs")).sessions()),
    )


def world_request(r: Any, cor: Callable[[str], list[str]] | None) -> PromptRequest:
    """The ``PromptRequest`` a simulated request makes (suggestion task), with the co-occurring
    queries ``cor`` knows for it (none when ``cor`` is None): the demo, Table 3 and
    ``reward_picks`` build their prompts the same way."""
    from gqr_serving.prompt import PromptRequest, SideInfo

    return PromptRequest(
        task="suggestion",
        query=r.query,
        side_info=SideInfo(
            history=list(r.history),
            ai_response=r.ai_response,
            cooccurring=cor(r.query) if cor is not None else [],
        ),
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from tqdm import tqdm

    from gqr_serving.logstore import LogReader, LogWriter
    from gqr_serving.prompt import load_preset
    from gqr_training.align import tinylm
    from gqr_training.align.beam import BeamConfig
    from gqr_training.align.data import clean_list, make_task, sft_examples
    from gqr_training.align.dpo import PrefOptions
    from gqr_training.align.generate import HFEngine
    from gqr_training.align.iterate import IterConfig, iterate
    from gqr_training.align.metrics import describe, policy_lists
    from gqr_training.align.pairs import PairConfig
    from gqr_training.align.report import (
        iterations_table,
        plot_iterations,
        reward_hacking_warnings,
        write_json,
    )
    from gqr_training.align.scoring import from_ctr_scorer
    from gqr_training.align.sft import SFTOptions, build_or_load, train_sft
    from gqr_training.sim import AnnotatorPolicy, World
    from gqr_training.sim.traffic import run_traffic

    torch.set_num_threads(args.threads)
    progress = not args.no_progress
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock()
    world = World(args.seed)
    preset = load_preset("suggestion")
    annotator = AnnotatorPolicy(world.universe, args.seed)

    # 1. logs -------------------------------------------------------------------------------
    logs = out / "logs"
    end_day = START + timedelta(days=args.days)
    if not (logs / ".done").exists():
        total = args.days * args.impressions_per_day
        with tqdm(total=total, desc="traffic (annotator)", disable=not progress) as bar:
            writer = LogWriter(str(logs))
            traffic = run_traffic(
                world,
                annotator,
                writer,
                start=START,
                days=args.days,
                impressions_per_day=args.impressions_per_day,
                model_version="annotator",
                progress=bar.update,
            )
            writer.close()
        (logs / ".done").write_text(str(traffic.true_ctr))
    clock.lap("logs")

    # 2. COR (successor counts; see module docstring) ----------------------------------------
    reader = LogReader(str(logs))
    cor = successor_table(reader.sessions())
    clock.lap("cor")

    def prompt_request(r: Any, with_cor: bool = True) -> PromptRequest:
        return world_request(r, cor if with_cor else None)

    # 3. CTR predictor -----------------------------------------------------------------------
    from gqr_training.ctr.scorer import CTRScorer
    from gqr_training.ctr.train import make_parser as ctr_parser
    from gqr_training.ctr.train import run as ctr_run

    ctr_dir = out / "ctr"
    done = sorted(p for p in ctr_dir.glob("*") if (p / "ctr_config.json").exists())
    if done:
        ctr_artifact = done[-1]
    else:
        ctr_args = ctr_parser().parse_args(
            [
                "--logs",
                str(logs),
                "--out",
                str(ctr_dir),
                "--version",
                "demo",
                "--end",
                datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC).isoformat(),
                "--window-days",
                str(args.days),
                "--epochs",
                str(args.ctr_epochs),
                "--device",
                args.device,
                "--threads",
                str(args.threads),
                "--hidden",
                str(args.ctr_hidden),
                "--layers",
                str(args.ctr_layers),
                "--heads",
                str(args.ctr_heads),
                "--intermediate",
                str(4 * args.ctr_hidden),
                "--lr",
                "1e-3",
                "--batch-size",
                "128",
                "--patience",
                "2",
                "--negative-rate",
                str(args.ctr_negative_rate),
            ]
            + (
                ["--max-train-impressions", str(args.ctr_impressions)]
                if args.ctr_impressions
                else []
            )
            + (["--no-progress"] if not progress else [])
        )
        ctr_artifact = ctr_run(ctr_args).artifact
    scorer = from_ctr_scorer(CTRScorer.load(ctr_artifact, args.device))
    clock.lap("ctr")

    def annotated(r: Any) -> list[str]:
        """Annotator lists topped up to N usable queries (a second look at a bad label)."""
        task = make_task(preset, prompt_request(r, with_cor=False))
        out: list[str] = []
        for _ in range(4):
            out = clean_list(preset, task, [*out, *annotator(r)])
            if len(out) == task.n_queries:
                break
        return out

    # 4. SFT ---------------------------------------------------------------------------------
    sft_dir = out / "llm" / "sft"
    train_reqs = [
        r
        for d in range(args.days)
        for r in world.sample_requests(
            START + timedelta(days=d),
            max(1, args.sft_requests // args.days)
            + args.train_prompts * args.max_iterations // args.days
            + 1,
        )
    ]
    random.Random(args.seed).shuffle(train_reqs)
    sft_reqs = train_reqs[: args.sft_requests]
    dpo_reqs = train_reqs[args.sft_requests :]
    if (sft_dir / "config.json").exists():
        model, tok = tinylm.load(sft_dir, args.device)
    else:
        rows = sft_examples(
            preset,
            [prompt_request(r) for r in sft_reqs],
            [annotated(r) for r in sft_reqs],
            augment=1,
            seed=args.seed,
        )
        model, tok = build_or_load(args.model, rows, args.device)
        opts = SFTOptions(
            epochs=args.sft_epochs,
            lr=2e-4 if args.lora else 2e-3,
            lora=args.lora,
            device=args.device,
            progress=progress,
        )
        model, sft_metrics = train_sft(model, tok, rows, out / "llm" / ".sft-trainer", opts)
        tinylm.save(model, tok, sft_dir)
        print(
            f"SFT: {len(rows)} examples, loss {sft_metrics['first_loss']:.2f} -> "
            f"{sft_metrics['last_loss']:.2f}, {tinylm.n_params(model):,} parameters"
        )
    clock.lap("sft")

    # 5. iterative DPO -----------------------------------------------------------------------
    test_day = end_day + timedelta(days=1)
    test_reqs = world.sample_requests(test_day, args.test_prompts)
    test = [make_task(preset, prompt_request(r)) for r in test_reqs]
    train = [make_task(preset, prompt_request(r)) for r in dpo_reqs]

    def true_ctr(lists: Sequence[Sequence[str]]) -> float:
        return sum(
            world.true_list_ctr(r, q) if q else 0.0 for r, q in zip(test_reqs, lists, strict=True)
        ) / max(1, len(test_reqs))

    oracle = true_ctr([world.oracle_list(r) for r in test_reqs])
    annot = describe(test, [annotator(r) for r in test_reqs], scorer, true_ctr)
    cfg = IterConfig(
        max_iterations=args.max_iterations,
        delta=args.delta,
        prompts_per_iteration=args.train_prompts,
        pairs=PairConfig(
            beam=BeamConfig(candidates=args.candidates, temperatures=args.beam_temperatures),
            temperature=args.rejected_temperature,
            pairs_per_prompt=args.pairs_per_prompt,
            max_length_gap=args.max_length_gap,
        ),
        pref=PrefOptions(
            lr=args.dpo_lr,
            epochs=args.dpo_epochs,
            sft_weight=args.sft_weight,
            lora=args.lora,
            device=args.device,
            progress=progress,
        ),
        overlap=args.overlap,
        seed=args.seed,
    )
    sft_model = tinylm.load(sft_dir, args.device)[0]
    result = iterate(model, tok, preset, train, test, scorer, out / "llm" / "dpo", cfg, true_ctr)
    aligned = result.model if result.model is not None else sft_model
    clock.lap("dpo")

    # 6. A/B ---------------------------------------------------------------------------------
    ab_reqs = world.sample_requests(test_day + timedelta(days=1), args.ab_requests)

    def arm(m: Any) -> Callable[[Sequence[Any]], list[list[str]]]:
        eng = HFEngine(m, tok, args.device, seed=args.seed + 7, top_p=cfg.eval_top_p)

        def serve(reqs: Sequence[Any]) -> list[list[str]]:
            tasks = [make_task(preset, prompt_request(r)) for r in reqs]
            return policy_lists(eng, preset, tasks, cfg.eval_temperature)

        return serve

    ab = ab_test(
        world,
        ab_reqs,
        {"stable (SFT)": arm(sft_model), "canary (aligned)": arm(aligned)},
        args.seed,
    )
    clock.lap("ab")

    iters = result.iterations
    sft_m, best = iters[0], iters[result.selected]
    gap = oracle - sft_m["true_ctr"]
    report: dict[str, Any] = {
        "command": "gqr demo "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k not in ("func", "command")
        ),
        "args": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("func", "command") and not callable(v)
        },
        "oracle_true_ctr": oracle,
        "annotator": annot,
        "sft": sft_m,
        "aligned": best,
        "selected_iteration": result.selected,
        "stopped": result.stopped,
        "iterations": iters,
        "true_ctr_lift": best["true_ctr"] / sft_m["true_ctr"] - 1 if sft_m["true_ctr"] else None,
        "aec_ratio": best["aec"] / sft_m["aec"] if sft_m["aec"] else None,
        "gap_closed": (best["true_ctr"] - sft_m["true_ctr"]) / gap if gap > 0 else None,
        "ab": ab,
        "warnings": reward_hacking_warnings(iters),
        "cor": "successor counts of the logged sessions (fallback; COR service not wired)",
        "ctr_artifact": str(ctr_artifact),
        "stages_s": clock.stages,
        "wall_s": clock.total,
    }
    write_json(out / "report.json", report)
    plot_iterations(iters, out / "iterations.png", oracle)
    md = markdown(report, iterations_table(iters))
    (out / "report.md").write_text(md)
    print(md)
    return report


def command_line(args: argparse.Namespace) -> str:
    skip = ("func", "command")
    opts = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in skip)
    return f"gqr demo {opts}"


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


def main(argv: list[str] | None = None) -> int:
    run(make_parser().parse_args(argv))
    return 0
