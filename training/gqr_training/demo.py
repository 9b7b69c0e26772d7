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

import itertools
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gqr_training.cliconfig import ConfigParser, as_flags
from gqr_training.demo_config import DESCRIPTION, DemoConfig

if TYPE_CHECKING:
    from gqr_serving.prompt import PromptRequest
    from gqr_training.align.iterate import IterResult
    from gqr_training.align.scoring import ListScorer

START = date(2025, 1, 1)


def make_parser() -> ConfigParser[DemoConfig]:
    return ConfigParser(DemoConfig, prog="gqr demo", description=DESCRIPTION)


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


@dataclass
class Demo:
    """What every step of one demo run shares: its flags, the world, the task preset, the
    annotator policy (the first logs' and the SFT data's) and the clock."""

    cfg: DemoConfig
    world: Any
    preset: Any
    annotator: Any
    clock: Clock

    @property
    def progress(self) -> bool:
        return not self.cfg.no_progress

    @property
    def end_day(self) -> date:
        """The day after the logged window."""
        return START + timedelta(days=self.cfg.days)

    def tasks(self, requests: Sequence[Any], cor: Callable[[str], list[str]]) -> list[Any]:
        from gqr_training.align.data import make_task

        return [make_task(self.preset, world_request(r, cor)) for r in requests]


@dataclass
class Alignment:
    """The DPO step's outcome and what the A/B and the report need of it."""

    result: IterResult
    sft_model: Any
    aligned: Any
    eval_temperature: float
    eval_top_p: float
    oracle: float
    annotator: dict[str, float]


def simulate_logs(demo: Demo) -> Path:
    """1. The annotator policy's traffic into a local log store (skipped when done)."""
    from tqdm import tqdm

    from gqr_serving.logstore import LogWriter
    from gqr_training.sim.traffic import run_traffic

    cfg = demo.cfg
    logs = cfg.out / "logs"
    if not (logs / ".done").exists():
        total = cfg.days * cfg.impressions_per_day
        with tqdm(total=total, desc="traffic (annotator)", disable=not demo.progress) as bar:
            writer = LogWriter(str(logs))
            traffic = run_traffic(
                demo.world,
                demo.annotator,
                writer,
                start=START,
                days=cfg.days,
                impressions_per_day=cfg.impressions_per_day,
                model_version="annotator",
                progress=bar.update,
            )
            writer.close()
        (logs / ".done").write_text(str(traffic.true_ctr))
    demo.clock.lap("logs")
    return logs


def build_cor(demo: Demo, logs: Path) -> Callable[[str], list[str]]:
    """2. COR: successor counts of the logged sessions (see the module docstring)."""
    from gqr_serving.logstore import LogReader

    cor = successor_table(LogReader(str(logs)).sessions())
    demo.clock.lap("cor")
    return cor


def train_ctr(demo: Demo, logs: Path) -> tuple[ListScorer, Path]:
    """3. The CTR predictor, trained by ``ctr-train`` on the logged window (reused when an
    earlier run finished it); returns the list reward it gives and its artifact."""
    from gqr_training.align.scoring import from_ctr_scorer
    from gqr_training.ctr.scorer import CTRScorer
    from gqr_training.ctr.train import run as ctr_train

    cfg = demo.cfg
    done = sorted(p for p in (cfg.out / "ctr").glob("*") if (p / "ctr_config.json").exists())
    if done:
        artifact = done[-1]
    else:
        end = datetime(demo.end_day.year, demo.end_day.month, demo.end_day.day, tzinfo=UTC)
        outcome = ctr_train(cfg.ctr_train(logs, end))
        assert outcome is not None  # one process: rank 0's outcome
        artifact = outcome.artifact
    scorer = from_ctr_scorer(CTRScorer.load(artifact, cfg.device))
    demo.clock.lap("ctr")
    return scorer, artifact


def annotated(demo: Demo, r: Any) -> list[str]:
    """The annotator's list topped up to N usable queries (a second look at a bad label)."""
    from gqr_training.align.data import clean_list, make_task

    task = make_task(demo.preset, world_request(r, None))
    out: list[str] = []
    for _ in range(4):
        out = clean_list(demo.preset, task, [*out, *demo.annotator(r)])
        if len(out) == task.n_queries:
            break
    return out


def fine_tune(demo: Demo, cor: Callable[[str], list[str]]) -> tuple[Any, Any, list[Any]]:
    """4. SFT of the LLM on annotated requests of the logged days (reused when done); returns
    the model, its tokenizer and the requests left for DPO."""
    from gqr_training.align import tinylm
    from gqr_training.align.data import sft_examples
    from gqr_training.align.sft import SFTOptions, build_or_load, train_sft

    cfg = demo.cfg
    sft_dir = cfg.out / "llm" / "sft"
    per_day = max(1, cfg.sft_requests // cfg.days)
    per_day += cfg.train_prompts * cfg.max_iterations // cfg.days + 1
    reqs = [
        r
        for d in range(cfg.days)
        for r in demo.world.sample_requests(START + timedelta(days=d), per_day)
    ]
    random.Random(cfg.seed).shuffle(reqs)
    sft_reqs, dpo_reqs = reqs[: cfg.sft_requests], reqs[cfg.sft_requests :]
    if (sft_dir / "config.json").exists():
        model, tok = tinylm.load(sft_dir, cfg.device)
    else:
        rows = sft_examples(
            demo.preset,
            [world_request(r, cor) for r in sft_reqs],
            [annotated(demo, r) for r in sft_reqs],
            augment=1,
            seed=cfg.seed,
        )
        model, tok = build_or_load(cfg.model, rows, cfg.device)
        opts = SFTOptions(
            epochs=cfg.sft_epochs,
            lr=2e-4 if cfg.lora else 2e-3,
            lora=cfg.lora,
            device=cfg.device,
            progress=demo.progress,
        )
        model, sft_metrics = train_sft(model, tok, rows, cfg.out / "llm" / ".sft-trainer", opts)
        tinylm.save(model, tok, sft_dir)
        print(
            f"SFT: {len(rows)} examples, loss {sft_metrics['first_loss']:.2f} -> "
            f"{sft_metrics['last_loss']:.2f}, {tinylm.n_params(model):,} parameters"
        )
    demo.clock.lap("sft")
    return model, tok, dpo_reqs


def align(
    demo: Demo,
    cor: Callable[[str], list[str]],
    scorer: ListScorer,
    ctr_artifact: Path,
    sft: tuple[Any, Any, list[Any]],
) -> Alignment:
    """5. Iterative DPO with the CTR predictor as the reward (AEC) on a fixed test set of the
    day after the window, the true CTR measured beside it."""
    from gqr_training.align import tinylm
    from gqr_training.align.iterate import iterate
    from gqr_training.align.metrics import describe

    cfg, world = demo.cfg, demo.world
    model, tok, dpo_reqs = sft
    test_reqs = world.sample_requests(demo.end_day + timedelta(days=1), cfg.test_prompts)
    test = demo.tasks(test_reqs, cor)
    train = demo.tasks(dpo_reqs, cor)

    def true_ctr(lists: Sequence[Sequence[str]]) -> float:
        shown = zip(test_reqs, lists, strict=True)
        return sum(world.true_list_ctr(r, q) if q else 0.0 for r, q in shown) / max(
            1, len(test_reqs)
        )

    oracle = true_ctr([world.oracle_list(r) for r in test_reqs])
    annot = describe(test, [demo.annotator(r) for r in test_reqs], scorer, true_ctr)
    sft_dir = cfg.out / "llm" / "sft"
    it = cfg.iter_config(sft_dir, ctr_artifact)
    sft_model = tinylm.load(sft_dir, cfg.device)[0]
    result = iterate(
        model, tok, demo.preset, train, test, scorer, cfg.out / "llm" / "dpo", it, true_ctr
    )
    aligned = result.model if result.model is not None else sft_model
    demo.clock.lap("dpo")
    return Alignment(result, sft_model, aligned, it.eval_temperature, it.eval_top_p, oracle, annot)


def ab(
    demo: Demo, cor: Callable[[str], list[str]], tok: Any, alignment: Alignment
) -> dict[str, Any]:
    """6. A simulated A/B test on the day after the test set's: stable = SFT, canary = the
    aligned model, both decoded as the gateway serves."""
    from gqr_training.align.generate import HFEngine
    from gqr_training.align.metrics import policy_lists
    from gqr_training.eval.ab import Arm, ab_test

    cfg = demo.cfg
    reqs = demo.world.sample_requests(demo.end_day + timedelta(days=2), cfg.ab_requests)

    def arm(m: Any) -> Arm:
        eng = HFEngine(m, tok, cfg.device, seed=cfg.seed + 7, top_p=alignment.eval_top_p)

        def serve(batch: Sequence[Any]) -> list[list[str]]:
            tasks = demo.tasks(batch, cor)
            return policy_lists(eng, demo.preset, tasks, alignment.eval_temperature)

        return serve

    arms = {"stable (SFT)": arm(alignment.sft_model), "canary (aligned)": arm(alignment.aligned)}
    result = ab_test(demo.world, reqs, arms, cfg.seed)
    demo.clock.lap("ab")
    return result


def run(cfg: DemoConfig) -> dict[str, Any]:
    """The demo: simulate, COR, CTR, SFT, DPO, A/B, report (each step reuses what an earlier
    run in the same folder finished)."""
    import torch

    from gqr_serving.prompt import load_preset
    from gqr_training.eval.demo_report import demo_report, write
    from gqr_training.sim import AnnotatorPolicy, World

    torch.set_num_threads(cfg.threads)
    cfg.out.mkdir(parents=True, exist_ok=True)
    world = World(cfg.seed)
    demo = Demo(
        cfg, world, load_preset("suggestion"), AnnotatorPolicy(world.universe, cfg.seed), Clock()
    )
    logs = simulate_logs(demo)
    cor = build_cor(demo, logs)
    scorer, ctr_artifact = train_ctr(demo, logs)
    sft = fine_tune(demo, cor)
    alignment = align(demo, cor, scorer, ctr_artifact, sft)
    result = ab(demo, cor, sft[1], alignment)
    extra = {
        "cor": "successor counts of the logged sessions (fallback; COR service not wired)",
        "ctr_artifact": str(ctr_artifact),
        "stages_s": demo.clock.stages,
        "wall_s": demo.clock.total,
    }
    report = demo_report(
        as_flags(cfg), alignment.oracle, alignment.annotator, alignment.result, result, extra
    )
    write(report, cfg.out)
    return report


def main(argv: list[str] | None = None) -> int:
    run(make_parser().parse_config(argv))
    return 0
