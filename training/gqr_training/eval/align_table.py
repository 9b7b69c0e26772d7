"""Table 3 (reduced): alignment variants side by side, AEC and TRUE CTR, from a finished demo.

    python -m gqr_training.eval.align_table --demo ./gqr-demo --out ./gqr-demo/table3

Reuses the demo's world seed, CTR predictor, SFT model and the first DPO iteration's pairs
(chosen from CTR-guided beam search, rejected from low-reward samples); each row trains one
variant from the SFT model and evaluates it on the demo's fixed test set. Rows: few-shot
prompting of the base model (`align/fewshot.py`: the demo's ``--model`` as loaded or, for the
default tiny LM, the same shape pretrained on the logs' unlabelled text; three annotated
demonstrations before each test prompt, not fine-tuned), SFT, SFT_ctr
(SFT on the chosen lists), KTO_ctr, SimPO_ctr, DPO_ctr (one round), IterDPO_ctr (the demo's
result), -BS (chosen = best random sample), -RF (no overlap filter), and the same four trainers
on pairs from raw clicks (SFT_clk, KTO_clk, SimPO_clk, DPO_clk: per logged user query a clicked
list over an unclicked one, as many pairs as the CTR rows get; `align/clicks.py`). -COR:
DPO_ctr with the co-occurring
queries left out of every prompt, in training (fresh pairs) and evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="align-table", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's flags (shared by ``python -m`` and ``gqr align-table``)."""
    a = p.add_argument
    a("--demo", type=Path, default=Path("gqr-demo"), help="A finished demo folder.")
    a("--out", type=Path, default=None, help="Default: <demo>/table3.")
    a("--rows", default="all", help="Comma-separated row names, or all.")
    a("--threads", type=int, default=1, help="torch CPU threads (1).")
    a("--shots", type=int, default=3, help="Demonstrations in the few-shot prompt (3).")


ROWS = (
    "few-shot",
    "SFT",
    "SFT_clk",
    "KTO_clk",
    "SimPO_clk",
    "DPO_clk",
    "SFT_ctr",
    "KTO_ctr",
    "SimPO_ctr",
    "DPO_ctr",
    "IterDPO_ctr",
    "-BS",
    "-RF",
    "-COR",
)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import copy
    import functools
    from datetime import timedelta

    import torch

    from gqr_serving.logstore import LogReader
    from gqr_training.align import tinylm
    from gqr_training.align.clicks import ClickPairStats, click_pairs
    from gqr_training.align.data import make_task, read_jsonl, sft_examples
    from gqr_training.align.dpo import PrefOptions, kto_rows, train_preferences
    from gqr_training.align.generate import HFEngine
    from gqr_training.align.metrics import SERVING_TOP_P, evaluate
    from gqr_training.align.overlap import Method, OverlapFilter
    from gqr_training.align.pairs import PairConfig, build_pairs
    from gqr_training.align.scoring import from_ctr_scorer
    from gqr_training.align.sft import SFTOptions, train_sft
    from gqr_training.ctr.scorer import CTRScorer
    from gqr_training.demo import START, open_demo, world_request

    torch.set_num_threads(args.threads)
    folder = open_demo(args.demo)
    demo = folder.report
    out = args.out or args.demo / "table3"
    out.mkdir(parents=True, exist_ok=True)
    wanted = ROWS if args.rows == "all" else tuple(args.rows.split(","))
    dargs = {
        "seed": 0,
        "days": 14,
        "test_prompts": 300,
        "dpo_lr": 5e-4,
        "dpo_epochs": 2.0,
        "sft_weight": 3.0,
        **folder.args,
    }
    seed = int(dargs["seed"])
    world, preset, cor = folder.world, folder.preset, folder.cor
    scorer = from_ctr_scorer(CTRScorer.load(demo["ctr_artifact"]))
    test_day = folder.day(1)
    test_reqs = world.sample_requests(test_day, int(dargs["test_prompts"]))

    def task(r: Any, with_cor: bool = True) -> Any:
        return make_task(preset, world_request(r, cor if with_cor else None))

    test = [task(r) for r in test_reqs]

    def true_ctr(lists: Any) -> float:
        pairs = zip(test_reqs, lists, strict=True)
        return sum(world.true_list_ctr(r, q) if q else 0.0 for r, q in pairs) / len(test_reqs)

    sft, tok = tinylm.load(args.demo / "llm" / "sft")
    pairs = read_jsonl(args.demo / "llm" / "dpo" / "pairs-1.jsonl")
    dpo_lr = float(dargs["dpo_lr"])
    gap = dargs.get("max_length_gap", 0.1)  # the demo's per-pair length limit (None: off)
    rows: dict[str, dict[str, float]] = {}

    def measure(name: str, model: Any, t0: float, tasks: Any = None) -> None:
        on = test if tasks is None else tasks
        m = evaluate(
            HFEngine(model, tok, seed=seed, top_p=SERVING_TOP_P), preset, on, scorer, true_ctr
        )
        m["seconds"] = time.time() - t0
        rows[name] = m
        print(f"{name:12s} AEC {m['aec']:.4f}  true CTR {m['true_ctr']:.4f}", flush=True)

    def pref(rows_: list[dict[str, Any]], algo: str) -> Any:
        # The demo's round: same lr and epochs; DPO keeps its NLL term on the chosen (RPO),
        # KTO and SimPO train their own losses alone.
        opts = PrefOptions(
            algo=algo,  # type: ignore[arg-type]
            lr=dpo_lr,
            epochs=float(dargs["dpo_epochs"]),
            sft_weight=float(dargs["sft_weight"]) if algo == "dpo" else 0.0,
            progress=False,
        )
        return train_preferences(copy.deepcopy(sft), tok, rows_, out / ".trainer", opts)[0]

    def sft_on(pairs_: list[dict[str, Any]]) -> Any:
        data = [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs_]
        opts = SFTOptions(epochs=2, lr=5e-4, progress=False)
        return train_sft(copy.deepcopy(sft), tok, data, out / ".sft", opts)[0]

    @functools.cache
    def clk_pairs() -> tuple[list[dict[str, Any]], ClickPairStats]:
        """Read once, on the first click row."""
        got, stats = click_pairs(
            str(args.demo / "logs"), preset, max_pairs=len(pairs), max_length_gap=gap, cor=cor,
            seed=seed,
        )  # fmt: skip
        print(f"click pairs: {stats}", flush=True)
        return [p.row() for p in got], stats

    def fresh_pairs(
        cfg: PairConfig, overlap: Method, with_cor: bool = True
    ) -> list[dict[str, Any]]:
        train_reqs = world.sample_requests(START + timedelta(days=2), len(pairs) + 40)
        tasks = [task(r, with_cor) for r in train_reqs][: len(pairs) + 40]
        got, _ = build_pairs(
            HFEngine(sft, tok, seed=seed + 1), preset, tasks, scorer, cfg, OverlapFilter(overlap)
        )
        return [p.row() for p in got]

    def fewshot() -> tuple[Any, list[Any]]:
        """The base model and the few-shot test tasks (see ``align/fewshot.py``)."""
        from gqr_training.align import fewshot as fs
        from gqr_training.sim import AnnotatorPolicy

        base_dir = out / "base"
        if dargs.get("model"):
            base = tinylm.load(str(dargs["model"]))[0]
        elif (base_dir / "config.json").exists():
            base = tinylm.load(base_dir)[0]
        else:
            reader = LogReader(str(args.demo / "logs"))
            ais = (i.side_info.ai_response for i in reader.read("impression"))
            corpus = fs.base_corpus(reader.sessions(), ais, seed=seed)
            opts = SFTOptions(epochs=1, lr=2e-3, progress=False, logging_steps=50, seed=seed)
            base, m = fs.pretrain_base(tok, sft, corpus, out / ".base", opts)
            tinylm.save(base, tok, base_dir)
            print(
                f"base LM: {corpus.sessions} session lines + {corpus.answers} AI answers, "
                f"loss {m['first_loss']:.2f} -> {m['last_loss']:.2f}",
                flush=True,
            )
        annotator = AnnotatorPolicy(world.universe, seed)
        demo_reqs = world.sample_requests(START, 4 * args.shots)
        rows_ = sft_examples(
            preset,
            [task(r).request for r in demo_reqs],
            [annotator(r) for r in demo_reqs],
            augment=0,
            seed=seed,
        )
        demos = fs.demonstrations(rows_, args.shots, seed)
        limit = int(getattr(base.config, "max_position_embeddings", 512))
        tasks, fit = fs.fewshot_tasks(test, demos, tok, limit)
        print(f"few-shot: {fit:.2f} demonstrations fit per test prompt", flush=True)
        return base, tasks

    for name in wanted:
        t0 = time.time()
        if name == "few-shot":
            base, shots = fewshot()
            measure(name, base, t0, shots)
        elif name == "SFT":
            measure(name, sft, t0)
        elif name == "IterDPO_ctr":
            rows[name] = {**demo["aligned"], "seconds": 0.0}
        elif name in ("SFT_ctr", "KTO_ctr", "SimPO_ctr", "DPO_ctr", "SFT_clk", "KTO_clk",
                      "SimPO_clk", "DPO_clk"):  # fmt: skip
            algo, signal = name.split("_")
            rows_ = pairs if signal == "ctr" else clk_pairs()[0]
            if algo == "SFT":
                measure(name, sft_on(rows_), t0)
            elif algo == "KTO":
                measure(name, pref(kto_rows(rows_), "kto"), t0)
            else:
                measure(name, pref(rows_, algo.lower()), t0)
        elif name == "-BS":
            measure(
                name,
                pref(fresh_pairs(PairConfig(use_beam=False, max_length_gap=gap), "token"), "dpo"),
                t0,
            )
        elif name == "-RF":
            measure(name, pref(fresh_pairs(PairConfig(max_length_gap=gap), "none"), "dpo"), t0)
        elif name == "-COR":
            no_cor = [task(r, with_cor=False) for r in test_reqs]
            model = pref(
                fresh_pairs(PairConfig(max_length_gap=gap), "token", with_cor=False), "dpo"
            )
            measure(name, model, t0, no_cor)
        else:
            raise SystemExit(f"unknown row {name!r}; rows: {', '.join(ROWS)}")
    report = {
        "rows": rows,
        "oracle_true_ctr": demo["oracle_true_ctr"],
        "pairs": {
            "ctr": len(pairs),
            "clk": clk_pairs()[1].__dict__ if clk_pairs.cache_info().currsize else None,
        },
    }
    (out / "table3.json").write_text(json.dumps(report, indent=2))
    md = [
        "| method | AEC | true CTR | resp chars | distinct-2 | model full lists |",
        "|---|---|---|---|---|---|",
    ]
    md += [
        f"| {k} | {v['aec']:.4f} | {v['true_ctr']:.4f} | {v['mean_response_chars']:.1f} | "
        f"{v['distinct_2']:.3f} | {v.get('llm_full_lists', float('nan')):.2f} |"
        for k, v in rows.items()
    ]
    md.append(f"| oracle | | {demo['oracle_true_ctr']:.4f} | | | |")
    (out / "table3.md").write_text("\n".join(md) + "\n")
    _plot(rows, out / "table3.png")
    print("\n".join(md))
    return report


def _plot(rows: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar([i - 0.2 for i in x], [rows[n]["aec"] for n in names], 0.4, label="AEC")
    ax.bar([i + 0.2 for i in x], [rows[n]["true_ctr"] for n in names], 0.4, label="true CTR")
    ax.set_xticks(list(x), names, rotation=30)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    run(make_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
