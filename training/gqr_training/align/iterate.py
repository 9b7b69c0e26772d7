"""``dpo-iterate``: iterative DPO. Each iteration regenerates pairs with the latest policy (beam
search + rejected sampling + overlap filter + eq. 6), trains one DPO round, and measures AEC on
a fixed test set; stop when the AEC gain < delta or at max iterations. Every iteration is
checkpointed, so a killed job resumes after the last finished iteration.

    dpo-iterate --model /artifacts/llm/sft-v1 --ctr /artifacts/ctr/v3 \\
        --prompts train.jsonl --test-prompts test.jsonl --out /artifacts/llm/dpo-v1
    dpo-iterate --model /artifacts/llm/stable --ctr /artifacts/ctr/run-1 --logs /logs \\
        --window-days 14 --cor /artifacts --out /artifacts/llm/run-1 --version run-1

``--prompts``/``--test-prompts`` are JSON Lines of ``PromptRequest`` objects; ``--logs`` takes
them from the log store instead (``gqr_training.align.logprompts``: the distinct user queries of
the window, a fixed hashed tenth as the test set). The last stdout line is a JobResult JSON with
``aec`` (the selected iteration) and ``aec_stable`` (the starting model, i.e. the stable one,
on the same test set and predictor): the operator's gate compares the two. The full
per-iteration report is ``<out>/report.json``.

Under ``torchrun --nproc-per-node N`` every rank trains each DPO round (TRL's trainer through
accelerate: DDP, ``--batch-size`` pairs per process), while rank 0 alone builds the round's pairs
and measures AEC, then broadcasts them: the same pairs and metrics as one process with the same
seeds, so N x ``--batch-size`` b runs like one process with N x b. Rank 0 alone writes the
iterations, the report and the model, and prints the JobResult.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gqr_serving.prompt import PromptRequest, TaskPreset
from gqr_serving.storage import ArtifactStore
from gqr_training import distributed
from gqr_training.align.data import Task
from gqr_training.align.dpo import PrefOptions, train_preferences
from gqr_training.align.iterate_config import DPOIterateConfig, IterConfig, prompt_pool
from gqr_training.align.metrics import TrueCTR, evaluate
from gqr_training.align.overlap import OverlapFilter
from gqr_training.align.pairs import Pair, PairStats, build_pairs
from gqr_training.align.scoring import ListScorer
from gqr_training.cliconfig import ConfigParser
from gqr_training.output import input_dir, publish_once

STATE = "state.json"


@dataclass
class IterResult:
    model: Any
    iterations: list[dict[str, float]]
    selected: int
    stopped: str


def _slice(tasks: Sequence[Task], i: int, n: int) -> list[Task]:
    if not tasks:
        return []
    lo = (i * n) % len(tasks)
    return [tasks[(lo + k) % len(tasks)] for k in range(min(n, len(tasks)))]


class _State:
    """``state.json``: the finished iterations' metrics and why the loop stopped, written
    after every iteration so a killed run resumes after the last finished one."""

    def __init__(self, out: Path, cfg: IterConfig, log: Callable[[str], None]) -> None:
        self.path = out / STATE
        state: dict[str, Any] = {"iterations": [], "stopped": ""}
        if self.path.exists():
            state = json.loads(self.path.read_text())
        self.iterations: list[dict[str, float]] = state["iterations"]
        self.stopped: str = state["stopped"]
        done = len(self.iterations) - 1  # iteration 0 is the starting policy's evaluation
        if self.stopped.startswith("max_iterations=") and done < cfg.max_iterations:
            # Stopped only by the cap of an earlier run: a higher cap continues the same run.
            log(f"continuing after iteration {done}: {self.stopped}, now {cfg.max_iterations}")
            self.stopped = ""

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"iterations": self.iterations, "stopped": self.stopped}, indent=2)
        )
        tmp.replace(self.path)


def _no_pairs(i: int, cfg: IterConfig, stats: PairStats) -> str:
    gap = stats.length_gap_refused
    return f"iteration {i}: no pair had a reward margin >= {cfg.pairs.min_margin}" + (
        f" within the length limit (max_length_gap {cfg.pairs.max_length_gap}: "
        f"{gap:.0f} of {stats.prompts:.0f} prompts had a pair only beyond it)"
        if gap
        else ""
    )


def iterate(
    model: Any,
    tokenizer: Any,
    preset: TaskPreset,
    train: Sequence[Task],
    test: Sequence[Task],
    scorer: ListScorer,
    out_dir: str | Path,
    cfg: IterConfig | None = None,
    true_ctr: TrueCTR | None = None,
    log: Callable[[str], None] = print,
) -> IterResult:
    """Run (or resume) iterative DPO from ``model``; returns the policy with the best test AEC."""
    from gqr_training.align import tinylm
    from gqr_training.align.generate import HFEngine

    cfg = cfg or IterConfig()
    out = Path(out_dir)
    main = distributed.is_main()
    if not main:
        log = _quiet
    out.mkdir(parents=True, exist_ok=True)
    state = _State(out, cfg, log)
    iters = state.iterations
    if len(iters) > 1:
        done = len(iters) - 1
        model, tokenizer = tinylm.load(out / f"iter-{done}", cfg.pref.device)
        log(f"resuming after iteration {done} from {out / f'iter-{done}'}")
    model.to(cfg.pref.device)

    def measure(m: Any) -> dict[str, float]:  # the test set, decoded as the gateway serves
        if not main:
            return distributed.broadcast({})
        engine = HFEngine(m, tokenizer, cfg.pref.device, seed=cfg.seed, top_p=cfg.eval_top_p)
        return distributed.broadcast(
            evaluate(engine, preset, test, scorer, true_ctr, cfg.eval_temperature)
        )

    def pairs_of(i: int) -> tuple[list[Pair], PairStats, OverlapFilter]:  # rank 0's, to all
        flt = OverlapFilter(cfg.overlap)
        if not main:
            got: tuple[list[Pair], PairStats, int, int] = distributed.broadcast(None)
            pairs, stats, flt.dropped, flt.checked = got
            return pairs, stats, flt
        tasks = _slice(train, i - 1, cfg.prompts_per_iteration)
        engine = HFEngine(model, tokenizer, cfg.pref.device, seed=cfg.seed + i)
        pairs, stats = build_pairs(engine, preset, tasks, scorer, cfg.pairs, flt)
        distributed.broadcast((pairs, stats, flt.dropped, flt.checked))
        return pairs, stats, flt

    if not iters:
        t0 = time.time()
        m = measure(model)
        m.update(iteration=0.0, seconds=time.time() - t0)
        iters.append(m)
        if main:
            state.save()
        log(_line(m))
    while not state.stopped:
        i = len(iters)
        if i > cfg.max_iterations:
            state.stopped = f"max_iterations={cfg.max_iterations} reached"
            break
        t0 = time.time()
        pairs, stats, flt = pairs_of(i)
        if not pairs:
            state.stopped = _no_pairs(i, cfg, stats)
            break
        t_pairs = time.time() - t0
        if main:
            rows_text = "".join(json.dumps(p.row()) + "\n" for p in pairs)
            (out / f"pairs-{i}.jsonl").write_text(rows_text)
        opts = PrefOptions(**{**asdict(cfg.pref), "seed": cfg.seed + i})
        rows = [p.row() for p in pairs]
        model, tm = train_preferences(model, tokenizer, rows, out / ".trainer", opts)
        m = measure(model)
        m.update({f"pairs_{k}": v for k, v in stats.as_dict().items()})
        m.update({f"dpo_{k}": v for k, v in tm.items()})
        m.update(iteration=float(i), overlap_dropped=float(flt.dropped))
        m.update(overlap_checked=float(flt.checked), seconds_pairs=t_pairs)
        m.update(seconds=time.time() - t0)
        if main:
            tinylm.save(model, tokenizer, out / f"iter-{i}")
        iters.append(m)
        gain = m["aec"] - iters[i - 1]["aec"]
        if gain < cfg.delta:
            state.stopped = f"iteration {i}: AEC gain {gain:+.4f} < delta {cfg.delta}"
        if main:
            state.save()
        log(_line(m))
    best = selected_iteration(iters, cfg.delta)
    if not main:  # rank 0 keeps the selected policy
        return IterResult(None, iters, best, state.stopped)
    state.save()
    shutil.rmtree(out / ".trainer", ignore_errors=True)
    if best != len(iters) - 1:
        model, tokenizer = (
            tinylm.load(out / f"iter-{best}", cfg.pref.device) if best > 0 else (None, None)
        )
    log(f"stopped: {state.stopped}; selected iteration {best}")
    return IterResult(model, iters, best, state.stopped)


def _quiet(_: str) -> None:
    """The log of ranks other than 0."""


def selected_iteration(iters: Sequence[dict[str, float]], delta: float) -> int:
    """The last iteration whose AEC gain over its predecessor reached ``delta`` (0, the
    starting policy, when none did). The iteration that stopped the loop by gaining less is
    not selected even when its AEC is a little higher: a gain below delta is within the
    predictor's noise, and each extra round drifts further from what users were shown."""
    best = 0
    for i in range(1, len(iters)):
        if iters[i]["aec"] - iters[i - 1]["aec"] < delta:
            break
        best = i
    return best


def _line(m: dict[str, float]) -> str:
    true = f"  true CTR {m['true_ctr']:.4f}" if "true_ctr" in m else ""
    pairs = f"  pairs {m['pairs_pairs']:.0f}" if "pairs_pairs" in m else ""
    if m.get("pairs_unsafe_chosen"):
        pairs += f" ({m['pairs_unsafe_chosen']:.0f} unsafe candidates never chosen)"
    return (
        f"iteration {m['iteration']:.0f}: AEC {m['aec']:.4f}{true}{pairs}"
        f"  len {m['mean_response_chars']:.1f}  distinct-2 {m['distinct_2']:.3f}"
        f"  ({m['seconds']:.0f}s)"
    )


def make_parser() -> ConfigParser[DPOIterateConfig]:
    return ConfigParser(DPOIterateConfig, prog="dpo-iterate", description=__doc__.split("\n\n")[0])


def _no_scorer(jobs: Sequence[Any], /) -> list[float]:
    """The scorer of ranks other than 0, which never score (rank 0 builds pairs, measures)."""
    raise RuntimeError("only rank 0 scores lists")


def load_scorer(spec: str, device: str) -> ListScorer:
    """A CTR artifact folder, or ``py:module:factory`` returning a ListScorer."""
    if spec.startswith("py:"):
        import importlib

        module, _, attr = spec[3:].partition(":")
        scorer: ListScorer = getattr(importlib.import_module(module), attr)()
        return scorer
    from gqr_training.align.scoring import from_ctr_scorer
    from gqr_training.ctr.scorer import CTRScorer

    return from_ctr_scorer(CTRScorer.load(spec, device))


def read_prompts(cfg: DPOIterateConfig) -> tuple[list[PromptRequest], list[PromptRequest]]:
    """The training and test prompts: from the log window (``--logs``), or the two files."""
    from gqr_training.align.data import read_jsonl, request_from_row

    if cfg.logs:
        from gqr_training.align.logprompts import prompts_from_logs
        from gqr_training.window import resolve_window

        start, end = resolve_window(cfg, cfg.logs)
        got = prompts_from_logs(
            cfg.logs,
            start,
            end,
            cfg.task,
            max_train=prompt_pool(cfg),
            max_test=cfg.test_size,
            cor_root=cfg.cor,
            cor_k=cfg.cor_k,
            seed=cfg.seed,
        )
        print(
            f"prompts from {got.impressions} impressions: {len(got.train)} training, "
            f"{len(got.test)} test",
            file=sys.stderr,
        )
        return got.train, got.test
    if cfg.prompts and cfg.test_prompts:
        train = [request_from_row(r) for r in read_jsonl(cfg.prompts)]
        return train, [request_from_row(r) for r in read_jsonl(cfg.test_prompts)]
    raise ValueError("give --logs, or both --prompts and --test-prompts")


def run(cfg: DPOIterateConfig) -> dict[str, Any]:
    """Iterate, keep the selected model as ``<out>/final`` (and publish it with --publish);
    returns the JobResult fields (none on ranks other than 0)."""
    from gqr_serving.prompt import load_preset
    from gqr_training.align import tinylm
    from gqr_training.align.data import make_task
    from gqr_training.align.report import reward_hacking_warnings

    main = distributed.is_main()
    iter_cfg = cfg.iter_config()  # first: a bad blocklist file fails before any loading
    preset = load_preset(cfg.task)
    # rank 0 reads the prompts and scores (the pairs and AEC are its); every rank trains
    train_reqs, test_reqs = distributed.broadcast(read_prompts(cfg) if main else None)
    train = [make_task(preset, r) for r in train_reqs]
    test = [make_task(preset, r) for r in test_reqs]
    scorer = _no_scorer
    if main:
        ctr = (
            cfg.ctr
            if cfg.ctr.startswith("py:")
            else input_dir(cfg.ctr, require=("ctr_config.json",))
        )
        scorer = load_scorer(ctr, cfg.device)
    base = input_dir(cfg.model, require=("config.json",))
    model, tok = tinylm.load(base, cfg.device)
    res = iterate(model, tok, preset, train, test, scorer, cfg.out, iter_cfg)
    if not main:
        return {}
    final = cfg.out / "final"
    if res.selected == 0:
        model, tok = tinylm.load(base, cfg.device)
    tinylm.save(res.model if res.selected else model, tok, final)
    summary = {
        "iterations": res.iterations,
        "selected": res.selected,
        "stopped": res.stopped,
        "warnings": reward_hacking_warnings(res.iterations),
    }
    (cfg.out / "report.json").write_text(json.dumps(summary, indent=2))
    version = cfg.version or cfg.out.name
    uri = str(final.absolute())
    if cfg.publish:
        shutil.copy2(cfg.out / "report.json", final / "report.json")
        uri = publish_once(ArtifactStore.at(cfg.publish), final, version)
    best = res.iterations[res.selected]
    metrics = {
        "aec": best["aec"],
        "aec_stable": res.iterations[0]["aec"],
        "iterations": float(len(res.iterations) - 1),
        "selected": float(res.selected),
    }
    return {
        "version": version,
        "artifact_uri": uri,
        "metrics": {k: round(v, 6) for k, v in metrics.items()},
        "message": res.stopped[:1000],
    }


def main(argv: list[str] | None = None) -> int:
    from gqr_training.jobresult import report

    cfg = make_parser().parse_config(argv)

    return report(
        "dpo-iterate", lambda: distributed.joined(cfg.device, lambda: run(cfg)), cfg.result_file
    )


if __name__ == "__main__":
    sys.exit(main())
