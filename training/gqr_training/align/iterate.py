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
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gqr_serving.prompt import TaskPreset
from gqr_training.align.data import Task
from gqr_training.align.dpo import PrefOptions, train_preferences
from gqr_training.align.metrics import SERVING_TEMPERATURE, SERVING_TOP_P, TrueCTR, evaluate
from gqr_training.align.overlap import Method, OverlapFilter
from gqr_training.align.pairs import PairConfig, build_pairs
from gqr_training.align.scoring import ListScorer
from gqr_training.window import add_result_file_arg, add_window_args

STATE = "state.json"
MIN_PROMPT_POOL = 2000


@dataclass
class IterConfig:
    """Iterative DPO's knobs."""

    max_iterations: int = 3
    """Stop after this many DPO rounds."""
    delta: float = 0.005
    """Stop when an iteration raises the test AEC by less than this."""
    prompts_per_iteration: int = 1024
    """Training prompts per round (a fresh slice of the pool each round)."""
    pairs: PairConfig = field(default_factory=PairConfig)
    """Beam search, rejected sampling and eq. 6."""
    pref: PrefOptions = field(default_factory=PrefOptions)
    """The DPO round."""
    overlap: Method = "token"
    """Overlap filter measure: token, embedding or none (-RF)."""
    eval_temperature: float = SERVING_TEMPERATURE
    """Decoding temperature of the test-set responses (the serving temperature)."""
    eval_top_p: float = SERVING_TOP_P
    """Nucleus mass of the test-set responses (the serving top-p; 1 = off). Pair generation
    samples without it: the beam's candidates and the rejected responses explore."""
    seed: int = 0
    """Sampling seed."""


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
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE
    state: dict[str, Any] = {"iterations": [], "stopped": ""}
    if state_path.exists():
        state = json.loads(state_path.read_text())
    iters: list[dict[str, float]] = state["iterations"]
    done = len(iters) - 1  # iteration 0 is the starting policy's evaluation
    if str(state["stopped"]).startswith("max_iterations=") and done < cfg.max_iterations:
        # Stopped only by the cap of an earlier run: a higher cap continues the same run.
        log(f"continuing after iteration {done}: {state['stopped']}, now {cfg.max_iterations}")
        state["stopped"] = ""
    if done > 0:
        model, tokenizer = tinylm.load(out / f"iter-{done}", cfg.pref.device)
        log(f"resuming after iteration {done} from {out / f'iter-{done}'}")
    model.to(cfg.pref.device)

    def engine(seed: int) -> HFEngine:
        return HFEngine(model, tokenizer, cfg.pref.device, seed=seed)

    def served(m: Any) -> HFEngine:  # the test set, decoded as the gateway serves
        return HFEngine(m, tokenizer, cfg.pref.device, seed=cfg.seed, top_p=cfg.eval_top_p)

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(state_path)

    if not iters:
        t0 = time.time()
        m = evaluate(served(model), preset, test, scorer, true_ctr, cfg.eval_temperature)
        m.update(iteration=0.0, seconds=time.time() - t0)
        iters.append(m)
        save_state()
        log(_line(m))
    while not state["stopped"]:
        i = len(iters)
        if i > cfg.max_iterations:
            state["stopped"] = f"max_iterations={cfg.max_iterations} reached"
            break
        t0 = time.time()
        flt = OverlapFilter(cfg.overlap)
        tasks = _slice(train, i - 1, cfg.prompts_per_iteration)
        pairs, stats = build_pairs(engine(cfg.seed + i), preset, tasks, scorer, cfg.pairs, flt)
        t_pairs = time.time() - t0
        if not pairs:
            gap = stats.length_gap_refused
            state["stopped"] = (
                f"iteration {i}: no pair had a reward margin >= {cfg.pairs.min_margin}"
                + (
                    f" within the length limit (max_length_gap {cfg.pairs.max_length_gap}: "
                    f"{gap:.0f} of {stats.prompts:.0f} prompts had a pair only beyond it)"
                    if gap
                    else ""
                )
            )
            break
        (out / f"pairs-{i}.jsonl").write_text("".join(json.dumps(p.row()) + "\n" for p in pairs))
        opts = PrefOptions(**{**asdict(cfg.pref), "seed": cfg.seed + i})
        model, tm = train_preferences(
            model, tokenizer, [p.row() for p in pairs], out / ".trainer", opts
        )
        m = evaluate(served(model), preset, test, scorer, true_ctr, cfg.eval_temperature)
        m.update({f"pairs_{k}": v for k, v in stats.as_dict().items()})
        m.update({f"dpo_{k}": v for k, v in tm.items()})
        m.update(
            iteration=float(i),
            overlap_dropped=float(flt.dropped),
            overlap_checked=float(flt.checked),
            seconds_pairs=t_pairs,
            seconds=time.time() - t0,
        )
        tinylm.save(model, tokenizer, out / f"iter-{i}")
        iters.append(m)
        gain = m["aec"] - iters[i - 1]["aec"]
        if gain < cfg.delta:
            state["stopped"] = f"iteration {i}: AEC gain {gain:+.4f} < delta {cfg.delta}"
        save_state()
        log(_line(m))
    save_state()
    shutil.rmtree(out / ".trainer", ignore_errors=True)
    best = selected_iteration(iters, cfg.delta)
    if best != len(iters) - 1:
        model, tokenizer = (
            tinylm.load(out / f"iter-{best}", cfg.pref.device) if best > 0 else (None, None)
        )
    log(f"stopped: {state['stopped']}; selected iteration {best}")
    return IterResult(model, iters, best, state["stopped"])


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
    return (
        f"iteration {m['iteration']:.0f}: AEC {m['aec']:.4f}{true}{pairs}"
        f"  len {m['mean_response_chars']:.1f}  distinct-2 {m['distinct_2']:.3f}"
        f"  ({m['seconds']:.0f}s)"
    )


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dpo-iterate", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--model", required=True, help="The SFT model folder (weights + tokenizer).")
    a(
        "--ctr",
        required=True,
        help="CTR predictor artifact folder (ctr-train's output), or py:MODULE:FACTORY for a "
        "ListScorer factory (tests, custom reward services).",
    )
    a("--prompts", type=Path, help="Training PromptRequests (JSON Lines); or --logs.")
    a("--test-prompts", type=Path, help="Fixed test PromptRequests (AEC); or --logs.")
    a("--logs", help="Log store root: prompts from the window's impressions (see --window-days).")
    add_window_args(p)
    a("--cor", help="COR artifact root: refresh the prompts' co-occurring queries (with --logs).")
    a(
        "--cor-k",
        type=int,
        default=10,
        help="Co-occurring queries per refreshed prompt: the gateway's --cor-k, so the model "
        "trains on the prompts it will be served (10).",
    )
    a(
        "--max-prompts",
        type=int,
        default=None,
        help="Training prompts kept from --logs (default: --prompts-per-iteration x "
        f"--max-iterations, at least {MIN_PROMPT_POOL}: fresh prompts for every iteration).",
    )
    a("--test-size", type=int, default=256, help="Test prompts kept from --logs (256).")
    a("--out", required=True, type=Path, help="Output folder: iter-<i>/, final/, report.json.")
    a("--version", default=None, help="Model version reported (default: the --out folder name).")
    a("--task", default="suggestion", help="Task preset (suggestion).")
    a("--max-iterations", type=int, default=3)
    a("--delta", type=float, default=0.005)
    a(
        "--prompts-per-iteration",
        type=int,
        default=IterConfig.prompts_per_iteration,
        help="Prompts each iteration builds pairs from (1024): more pairs, more of the reward "
        "model's choices learned per round.",
    )
    a(
        "--eval-temperature",
        type=parse_temperature,
        default=SERVING_TEMPERATURE,
        help="Temperature of the test set's responses: the served one "
        f"(spec.llm.decoding.temperature; {SERVING_TEMPERATURE}).",
    )
    a(
        "--eval-top-p",
        type=parse_top_p,
        default=SERVING_TOP_P,
        help=f"Top-p of the test set's responses: the served one (spec.llm.decoding.topP; "
        f"{SERVING_TOP_P}).",
    )
    a("--beam-size", type=int, default=4)
    a("--candidates", type=int, default=8, help="C: next-query samples per beam (8).")
    a(
        "--temperatures",
        type=parse_floats,
        default=(0.7, 1.0),
        help="Temperatures the C samples are spread over (0.7,1.0).",
    )
    a("--rejected-budget", type=int, default=8)
    a("--pairs-per-prompt", type=int, default=1, help="Eq. 6 pairs kept per prompt (1).")
    a(
        "--max-length-gap",
        type=parse_gap,
        default=0.1,
        help="Longest length difference inside a pair, relative to the longer response "
        "(0.1; 'none': eq. 6 alone).",
    )
    a("--overlap", choices=["token", "embedding", "none"], default="token")
    a("--no-beam", action="store_true", help="-BS ablation: best random sample is chosen.")
    a("--beta", type=float, default=0.1)
    a("--lr", type=float, default=5e-4)
    a("--epochs", type=float, default=2.0)
    a(
        "--sft-weight",
        type=float,
        default=3.0,
        help="Weight of the NLL term on the chosen response (RPO; 0 = pure DPO) (3.0).",
    )
    a("--batch-size", type=int, default=16)
    a("--lora", action="store_true", help="LoRA adapters; reference = adapters disabled.")
    a("--device", default="cpu", help="cpu or cuda.")
    a("--bf16", action="store_true", help="bf16 mixed precision for the DPO rounds (CUDA).")
    a("--seed", type=int, default=0)
    a("--no-progress", action="store_true")
    add_result_file_arg(p)
    return p


def prompt_pool(args: argparse.Namespace) -> int:
    """Training prompts kept from the logs: ``--max-prompts``, or by default enough for every
    iteration to get fresh ones (at least ``MIN_PROMPT_POOL``). The pool is a prefix of a fixed
    shuffle, so a larger pool (a rerun with a higher cap) keeps the earlier iterations' prompts."""
    if args.max_prompts is not None:
        return int(args.max_prompts)
    return max(MIN_PROMPT_POOL, int(args.prompts_per_iteration) * int(args.max_iterations))


def parse_top_p(value: str) -> float:
    """A nucleus mass: 0 < p <= 1."""
    try:
        p = float(value)
    except ValueError:
        p = -1.0
    if not 0.0 < p <= 1.0:
        raise argparse.ArgumentTypeError(f"{value!r}: top-p must be in (0, 1]")
    return p


def parse_temperature(value: str) -> float:
    """One sampling temperature, by the rule of :func:`parse_floats` (>= 0; 0 = greedy)."""
    temps = parse_floats(value)
    if len(temps) != 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected one temperature, e.g. 0.7")
    return temps[0]


def parse_floats(value: str) -> tuple[float, ...]:
    """``"0.7,1.0"`` -> ``(0.7, 1.0)`` for temperature lists on command lines."""
    try:
        out = tuple(float(x) for x in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected comma-separated numbers, e.g. 0.7,1.0"
        ) from None
    if not out or any(t < 0 for t in out):
        raise argparse.ArgumentTypeError(f"{value!r}: temperatures must be >= 0")
    return out


def parse_gap(value: str) -> float | None:
    """``"0.1"`` -> 0.1, ``"none"`` -> None (no length limit inside a pair)."""
    if value.lower() == "none":
        return None
    try:
        gap = float(value)
    except ValueError:
        gap = -1.0
    if not 0.0 <= gap <= 1.0:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected a relative length gap in [0, 1] or 'none'"
        )
    return gap


def config_from_args(args: argparse.Namespace) -> IterConfig:
    from gqr_training.align.beam import BeamConfig

    return IterConfig(
        max_iterations=args.max_iterations,
        delta=args.delta,
        prompts_per_iteration=args.prompts_per_iteration,
        pairs=PairConfig(
            beam=BeamConfig(
                beam_size=args.beam_size,
                candidates=args.candidates,
                temperatures=args.temperatures,
            ),
            rejected_budget=args.rejected_budget,
            pairs_per_prompt=args.pairs_per_prompt,
            max_length_gap=args.max_length_gap,
            use_beam=not args.no_beam,
        ),
        pref=PrefOptions(
            beta=args.beta,
            lr=args.lr,
            epochs=args.epochs,
            sft_weight=args.sft_weight,
            batch_size=args.batch_size,
            lora=args.lora,
            device=args.device,
            bf16=args.bf16,
            progress=not args.no_progress,
        ),
        overlap=args.overlap,
        eval_temperature=args.eval_temperature,
        eval_top_p=args.eval_top_p,
        seed=args.seed,
    )


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


def main(argv: list[str] | None = None) -> int:
    from gqr_serving.prompt import load_preset
    from gqr_training.align import tinylm
    from gqr_training.align.data import make_task, read_jsonl, request_from_row
    from gqr_training.align.report import reward_hacking_warnings
    from gqr_training.jobresult import report

    args = make_parser().parse_args(argv)

    def body() -> dict[str, Any]:
        preset = load_preset(args.task)
        if args.logs:
            from gqr_training.align.logprompts import prompts_from_logs
            from gqr_training.window import resolve_window

            start, end = resolve_window(args, args.logs)
            got = prompts_from_logs(
                args.logs,
                start,
                end,
                args.task,
                max_train=prompt_pool(args),
                max_test=args.test_size,
                cor_root=args.cor,
                cor_k=args.cor_k,
                seed=args.seed,
            )
            train_reqs, test_reqs = got.train, got.test
            print(
                f"prompts from {got.impressions} impressions: {len(train_reqs)} training, "
                f"{len(test_reqs)} test",
                file=sys.stderr,
            )
        elif args.prompts and args.test_prompts:
            train_reqs = [request_from_row(r) for r in read_jsonl(args.prompts)]
            test_reqs = [request_from_row(r) for r in read_jsonl(args.test_prompts)]
        else:
            raise ValueError("give --logs, or both --prompts and --test-prompts")
        train = [make_task(preset, r) for r in train_reqs]
        test = [make_task(preset, r) for r in test_reqs]
        scorer = load_scorer(args.ctr, args.device)
        model, tok = tinylm.load(args.model, args.device)
        res = iterate(model, tok, preset, train, test, scorer, args.out, config_from_args(args))
        final = args.out / "final"
        if res.selected == 0:
            model, tok = tinylm.load(args.model, args.device)
        tinylm.save(res.model if res.selected else model, tok, final)
        summary = {
            "iterations": res.iterations,
            "selected": res.selected,
            "stopped": res.stopped,
            "warnings": reward_hacking_warnings(res.iterations),
        }
        (args.out / "report.json").write_text(json.dumps(summary, indent=2))
        best = res.iterations[res.selected]
        metrics = {
            "aec": best["aec"],
            "aec_stable": res.iterations[0]["aec"],
            "iterations": float(len(res.iterations) - 1),
            "selected": float(res.selected),
        }
        return {
            "version": args.version or args.out.name,
            "artifact_uri": str(final.absolute()),
            "metrics": {k: round(v, 6) for k, v in metrics.items()},
            "message": res.stopped[:1000],
        }

    return report("dpo-iterate", body, args.result_file)


if __name__ == "__main__":
    sys.exit(main())
