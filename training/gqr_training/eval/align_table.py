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

import copy
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gqr_training.cliconfig import ConfigParser, at_least, validate

if TYPE_CHECKING:
    from gqr_training.align.overlap import Method

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
# The demo's flags a finished demo's report.json may predate: their values then.
DEMO_DEFAULTS = {
    "seed": 0,
    "days": 14,
    "test_prompts": 300,
    "dpo_lr": 5e-4,
    "dpo_epochs": 2.0,
    "sft_weight": 3.0,
}


@dataclass(kw_only=True)
class AlignTableConfig:
    """Everything ``gqr align-table`` is told: the demo folder, the rows and the output."""

    demo: Path = field(default=Path("gqr-demo"), metadata={"help": "A finished demo folder."})
    out: Path | None = field(default=None, metadata={"help": "Default: <demo>/table3."})
    rows: str = field(default="all", metadata={"help": "Comma-separated row names, or all."})
    threads: int = field(
        default=1,
        metadata={"help": "torch CPU threads (1).", "rule": at_least(1, "a whole number")},
    )
    shots: int = field(
        default=3,
        metadata={
            "help": "Demonstrations in the few-shot prompt (3).",
            "rule": at_least(1, "a whole number"),
        },
    )

    def __post_init__(self) -> None:
        validate(self)
        unknown = [r for r in self.wanted() if r not in ROWS]
        if unknown:
            raise ValueError(f"--rows {self.rows!r}: unknown {unknown}; rows: {', '.join(ROWS)}")

    def wanted(self) -> tuple[str, ...]:
        return ROWS if self.rows == "all" else tuple(self.rows.split(","))


def make_parser() -> ConfigParser[AlignTableConfig]:
    return ConfigParser(
        AlignTableConfig,
        prog="gqr align-table",
        description="Train each alignment variant from a finished demo's SFT model and pairs; "
        "write a markdown table (AEC and true CTR side by side) and a PNG.",
    )


class Table3:
    """One finished demo's world, predictor, SFT model, test set and first-round pairs, and
    one method per kind of row, each measuring a model on the demo's test set."""

    def __init__(self, cfg: AlignTableConfig, out: Path) -> None:
        from gqr_training.align import tinylm
        from gqr_training.align.data import read_jsonl
        from gqr_training.align.scoring import from_ctr_scorer
        from gqr_training.ctr.scorer import CTRScorer
        from gqr_training.demo import open_demo

        folder = open_demo(cfg.demo)
        self.cfg, self.out, self.report = cfg, out, folder.report
        self.dargs = {**DEMO_DEFAULTS, **folder.args}
        self.seed = int(self.dargs["seed"])
        self.world, self.preset, self.cor = folder.world, folder.preset, folder.cor
        self.scorer = from_ctr_scorer(CTRScorer.load(folder.report["ctr_artifact"]))
        self.test_reqs = self.world.sample_requests(folder.day(1), int(self.dargs["test_prompts"]))
        self.test = [self.task(r) for r in self.test_reqs]
        self.sft, self.tok = tinylm.load(cfg.demo / "llm" / "sft")
        self.pairs = read_jsonl(cfg.demo / "llm" / "dpo" / "pairs-1.jsonl")
        self.gap = self.dargs.get("max_length_gap", 0.1)  # the demo's length limit (None: off)
        self.rows: dict[str, dict[str, float]] = {}

    def task(self, r: Any, with_cor: bool = True) -> Any:
        from gqr_training.align.data import make_task
        from gqr_training.demo import world_request

        return make_task(self.preset, world_request(r, self.cor if with_cor else None))

    def true_ctr(self, lists: Any) -> float:
        shown = zip(self.test_reqs, lists, strict=True)
        return sum(self.world.true_list_ctr(r, q) if q else 0.0 for r, q in shown) / len(
            self.test_reqs
        )

    def measure(self, name: str, model: Any, t0: float, tasks: Any = None) -> None:
        from gqr_training.align.generate import HFEngine
        from gqr_training.align.metrics import SERVING_TOP_P, evaluate

        engine = HFEngine(model, self.tok, seed=self.seed, top_p=SERVING_TOP_P)
        on = self.test if tasks is None else tasks
        m = evaluate(engine, self.preset, on, self.scorer, self.true_ctr)
        m["seconds"] = time.time() - t0
        self.rows[name] = m
        print(f"{name:12s} AEC {m['aec']:.4f}  true CTR {m['true_ctr']:.4f}", flush=True)

    def pref(self, rows: list[dict[str, Any]], algo: str) -> Any:
        """One round from the SFT model, as the demo's: same lr and epochs; DPO keeps its NLL
        term on the chosen (RPO), KTO and SimPO train their own losses alone."""
        from gqr_training.align.dpo import PrefOptions, train_preferences

        opts = PrefOptions(
            algo=algo,  # type: ignore[arg-type]
            lr=float(self.dargs["dpo_lr"]),
            epochs=float(self.dargs["dpo_epochs"]),
            sft_weight=float(self.dargs["sft_weight"]) if algo == "dpo" else 0.0,
            progress=False,
        )
        sft = copy.deepcopy(self.sft)
        return train_preferences(sft, self.tok, rows, self.out / ".trainer", opts)[0]

    def sft_on(self, pairs: list[dict[str, Any]]) -> Any:
        from gqr_training.align.sft import SFTOptions, train_sft

        data = [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs]
        opts = SFTOptions(epochs=2, lr=5e-4, progress=False)
        return train_sft(copy.deepcopy(self.sft), self.tok, data, self.out / ".sft", opts)[0]

    @functools.cached_property
    def click_pairs(self) -> tuple[list[dict[str, Any]], Any]:
        """Pairs from the logged clicks, as many as the CTR rows get (read on first use)."""
        from gqr_training.align.clicks import click_pairs

        got, stats = click_pairs(
            str(self.cfg.demo / "logs"), self.preset, max_pairs=len(self.pairs),
            max_length_gap=self.gap, cor=self.cor, seed=self.seed,
        )  # fmt: skip
        print(f"click pairs: {stats}", flush=True)
        return [p.row() for p in got], stats

    def fresh_pairs(self, use_beam: bool, overlap: Method, with_cor: bool = True) -> list[Any]:
        """New pairs from the SFT model on prompts of the logged window (the ablations)."""
        from datetime import timedelta

        from gqr_training.align.generate import HFEngine
        from gqr_training.align.overlap import OverlapFilter
        from gqr_training.align.pairs import PairConfig, build_pairs
        from gqr_training.demo import START

        n = len(self.pairs) + 40
        reqs = self.world.sample_requests(START + timedelta(days=2), n)
        tasks = [self.task(r, with_cor) for r in reqs][:n]
        cfg = PairConfig(use_beam=use_beam, max_length_gap=self.gap)
        engine = HFEngine(self.sft, self.tok, seed=self.seed + 1)
        flt = OverlapFilter(overlap)
        got, _ = build_pairs(engine, self.preset, tasks, self.scorer, cfg, flt)
        return [p.row() for p in got]

    def fewshot(self) -> tuple[Any, list[Any]]:
        """The base model and the few-shot test tasks (see ``align/fewshot.py``)."""
        from gqr_training.align import fewshot as fs
        from gqr_training.align.data import sft_examples
        from gqr_training.demo import START
        from gqr_training.sim import AnnotatorPolicy

        base = self.base_model()
        annotator = AnnotatorPolicy(self.world.universe, self.seed)
        demo_reqs = self.world.sample_requests(START, 4 * self.cfg.shots)
        rows = sft_examples(
            self.preset,
            [self.task(r).request for r in demo_reqs],
            [annotator(r) for r in demo_reqs],
            augment=0,
            seed=self.seed,
        )
        demos = fs.demonstrations(rows, self.cfg.shots, self.seed)
        limit = int(getattr(base.config, "max_position_embeddings", 512))
        tasks, fit = fs.fewshot_tasks(self.test, demos, self.tok, limit)
        print(f"few-shot: {fit:.2f} demonstrations fit per test prompt", flush=True)
        return base, tasks

    def base_model(self) -> Any:
        """The demo's ``--model`` as loaded, or for the tiny LM the same shape pretrained on
        the logs' unlabelled text (saved, reused by a rerun)."""
        from gqr_serving.logstore import LogReader
        from gqr_training.align import fewshot as fs
        from gqr_training.align import tinylm
        from gqr_training.align.sft import SFTOptions

        base_dir = self.out / "base"
        if self.dargs.get("model"):
            return tinylm.load(str(self.dargs["model"]))[0]
        if (base_dir / "config.json").exists():
            return tinylm.load(base_dir)[0]
        reader = LogReader(str(self.cfg.demo / "logs"))
        ais = (i.side_info.ai_response for i in reader.read("impression"))
        corpus = fs.base_corpus(reader.sessions(), ais, seed=self.seed)
        opts = SFTOptions(epochs=1, lr=2e-3, progress=False, logging_steps=50, seed=self.seed)
        base, m = fs.pretrain_base(self.tok, self.sft, corpus, self.out / ".base", opts)
        tinylm.save(base, self.tok, base_dir)
        print(
            f"base LM: {corpus.sessions} session lines + {corpus.answers} AI answers, "
            f"loss {m['first_loss']:.2f} -> {m['last_loss']:.2f}",
            flush=True,
        )
        return base

    def row(self, name: str) -> None:
        from gqr_training.align.dpo import kto_rows

        t0 = time.time()
        if name == "few-shot":
            base, shots = self.fewshot()
            self.measure(name, base, t0, shots)
        elif name == "SFT":
            self.measure(name, self.sft, t0)
        elif name == "IterDPO_ctr":
            self.rows[name] = {**self.report["aligned"], "seconds": 0.0}
        elif name.endswith(("_ctr", "_clk")):
            algo, signal = name.split("_")
            pairs = self.pairs if signal == "ctr" else self.click_pairs[0]
            if algo == "SFT":
                self.measure(name, self.sft_on(pairs), t0)
            elif algo == "KTO":
                self.measure(name, self.pref(kto_rows(pairs), "kto"), t0)
            else:
                self.measure(name, self.pref(pairs, algo.lower()), t0)
        elif name == "-BS":
            self.measure(name, self.pref(self.fresh_pairs(False, "token"), "dpo"), t0)
        elif name == "-RF":
            self.measure(name, self.pref(self.fresh_pairs(True, "none"), "dpo"), t0)
        elif name == "-COR":
            no_cor = [self.task(r, with_cor=False) for r in self.test_reqs]
            model = self.pref(self.fresh_pairs(True, "token", with_cor=False), "dpo")
            self.measure(name, model, t0, no_cor)

    def write(self) -> dict[str, Any]:
        """``table3.json``, ``table3.md`` (printed too) and ``table3.png``."""
        clk = self.__dict__.get("click_pairs")  # only when a click row read them
        report = {
            "rows": self.rows,
            "oracle_true_ctr": self.report["oracle_true_ctr"],
            "pairs": {"ctr": len(self.pairs), "clk": clk[1].__dict__ if clk else None},
        }
        (self.out / "table3.json").write_text(json.dumps(report, indent=2))
        md = [
            "| method | AEC | true CTR | resp chars | distinct-2 | model full lists |",
            "|---|---|---|---|---|---|",
        ]
        md += [
            f"| {k} | {v['aec']:.4f} | {v['true_ctr']:.4f} | {v['mean_response_chars']:.1f} | "
            f"{v['distinct_2']:.3f} | {v.get('llm_full_lists', float('nan')):.2f} |"
            for k, v in self.rows.items()
        ]
        md.append(f"| oracle | | {self.report['oracle_true_ctr']:.4f} | | | |")
        (self.out / "table3.md").write_text("\n".join(md) + "\n")
        _plot(self.rows, self.out / "table3.png")
        print("\n".join(md))
        return report


def run(cfg: AlignTableConfig) -> dict[str, Any]:
    import torch

    torch.set_num_threads(cfg.threads)
    out = cfg.out or cfg.demo / "table3"
    out.mkdir(parents=True, exist_ok=True)
    table = Table3(cfg, out)
    for name in cfg.wanted():
        table.row(name)
    return table.write()


def _plot(rows: dict[str, dict[str, float]], path: Path) -> None:
    from gqr_training.plots import figure

    names = list(rows)
    x = range(len(names))
    with figure(path, (8, 4)) as ax:
        ax.bar([i - 0.2 for i in x], [rows[n]["aec"] for n in names], 0.4, label="AEC")
        ax.bar([i + 0.2 for i in x], [rows[n]["true_ctr"] for n in names], 0.4, label="true CTR")
        ax.set_xticks(list(x), names, rotation=30)
        ax.legend()


def main(argv: list[str] | None = None) -> int:
    run(make_parser().parse_config(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
