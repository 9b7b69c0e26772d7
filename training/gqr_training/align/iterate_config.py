"""Iterative DPO's configuration: :class:`IterConfig`, the algorithm's knobs, and
:class:`DPOIterateConfig`, what the ``dpo-iterate`` command is told (one field a flag,
``gqr_training.cliconfig``), with the one mapping of its flags onto ``IterConfig``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gqr_serving.safety import OutputFilter, SafetyError, output_filter, parse_pii
from gqr_training.align.beam import BeamConfig
from gqr_training.align.dpo import PrefOptions
from gqr_training.align.metrics import SERVING_TEMPERATURE, SERVING_TOP_P
from gqr_training.align.overlap import Method
from gqr_training.align.pairs import PairConfig
from gqr_training.cliconfig import Rule, at_least, positive, validate
from gqr_training.window import RESULT_FILE_HELP, end_field, window_days_field

MIN_PROMPT_POOL = 2000
WHOLE = at_least(1, "a whole number")


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


# Values with a syntax of their own, shared with ``gqr demo``'s flags of the same meaning.
def parse_floats(text: str) -> tuple[float, ...]:
    """``"0.7,1.0"`` -> ``(0.7, 1.0)``."""
    return tuple(float(x) for x in text.split(","))


def parse_gap(text: str) -> float | None:
    """``"0.1"`` -> 0.1, ``"none"`` -> None (no length limit inside a pair)."""
    return None if text.lower() == "none" else float(text)


def parse_temperature(text: str) -> float:
    (value,) = parse_floats(text)  # one temperature, by the rule of the lists
    return value


TEMPERATURES = {
    "parse": parse_floats,
    "rule": Rule(
        lambda v: len(v) > 0 and all(t >= 0 for t in v),
        "expected comma-separated temperatures >= 0, e.g. 0.7,1.0",
    ),
}
TEMPERATURE = {
    "parse": parse_temperature,
    "rule": Rule(lambda v: v >= 0, "expected one temperature >= 0 (0 = greedy), e.g. 0.7"),
}


def _pii_ok(value: str) -> bool:
    try:
        parse_pii(value)
    except SafetyError:
        return False
    return True


PII = {
    "rule": Rule(_pii_ok, "expected all, none, or a comma list of url, email, phone, card, iban")
}
GAP = {
    "parse": parse_gap,
    "rule": Rule(lambda v: 0 <= v <= 1, "expected a relative length gap in [0, 1] or 'none'"),
}


@dataclass(kw_only=True)
class DPOIterateConfig:
    """Everything ``dpo-iterate`` is told: the models, the prompts, the knobs and the output."""

    model: str = field(
        metadata={
            "help": "The model to align (weights + tokenizer): a folder, pvc://, s3://, gs:// "
            "or hf://org/name[@revision]."
        }
    )
    ctr: str = field(
        metadata={
            "help": "CTR predictor artifact (ctr-train's output; any URI form), or "
            "py:MODULE:FACTORY for a ListScorer factory (tests, custom reward services)."
        }
    )
    prompts: Path | None = field(
        default=None, metadata={"help": "Training PromptRequests (JSON Lines); or --logs."}
    )
    test_prompts: Path | None = field(
        default=None, metadata={"help": "Fixed test PromptRequests (AEC); or --logs."}
    )
    logs: str | None = field(
        default=None,
        metadata={
            "help": "Log store root: prompts from the window's impressions (see --window-days)."
        },
    )
    window_days: int = window_days_field()
    end: str = end_field()
    cor: str | None = field(
        default=None,
        metadata={
            "help": "COR artifact root: refresh the prompts' co-occurring queries (with --logs)."
        },
    )
    cor_k: int = field(
        default=10,
        metadata={
            "help": "Co-occurring queries per refreshed prompt: the gateway's --cor-k, so the "
            "model trains on the prompts it will be served (10).",
            "rule": at_least(0, "a whole number"),
        },
    )
    max_prompts: int | None = field(
        default=None,
        metadata={
            "help": "Training prompts kept from --logs (default: --prompts-per-iteration x "
            f"--max-iterations, at least {MIN_PROMPT_POOL}: fresh prompts for every iteration).",
            "rule": WHOLE,
        },
    )
    test_size: int = field(
        default=256, metadata={"help": "Test prompts kept from --logs (256).", "rule": WHOLE}
    )
    out: Path = field(metadata={"help": "Output folder: iter-<i>/, final/, report.json."})
    version: str | None = field(
        default=None,
        metadata={"help": "Model version reported (default: the --out folder name)."},
    )
    publish: str | None = field(
        default=None,
        metadata={
            "help": "Model store (a folder, pvc://, s3://, gs://): publish the selected model "
            "whole as <publish>/<version> and report that URI (default: report <out>/final)."
        },
    )
    task: str = field(default="suggestion", metadata={"help": "Task preset (suggestion)."})
    max_iterations: int = field(
        default=3,
        metadata={"help": "Most DPO rounds (3).", "rule": at_least(0, "a whole number")},
    )
    delta: float = field(
        default=0.005, metadata={"help": "Stop when an iteration gains less AEC (0.005)."}
    )
    prompts_per_iteration: int = field(
        default=IterConfig.prompts_per_iteration,
        metadata={
            "help": "Prompts each iteration builds pairs from (1024): more pairs, more of the "
            "reward model's choices learned per round.",
            "rule": WHOLE,
        },
    )
    eval_temperature: float = field(
        default=SERVING_TEMPERATURE,
        metadata={
            "help": "Temperature of the test set's responses: the served one "
            f"(spec.llm.decoding.temperature; {SERVING_TEMPERATURE}).",
            **TEMPERATURE,
        },
    )
    eval_top_p: float = field(
        default=SERVING_TOP_P,
        metadata={
            "help": "Top-p of the test set's responses: the served one (spec.llm.decoding.topP; "
            f"{SERVING_TOP_P}).",
            "rule": Rule(lambda v: 0 < v <= 1, "expected a top-p in (0, 1]"),
        },
    )
    beam_size: int = field(
        default=4, metadata={"help": "B: lists kept per prompt by beam search (4).", "rule": WHOLE}
    )
    candidates: int = field(
        default=8, metadata={"help": "C: next-query samples per beam (8).", "rule": WHOLE}
    )
    temperatures: tuple[float, ...] = field(
        default=(0.7, 1.0),
        metadata={"help": "Temperatures the C samples are spread over (0.7,1.0).", **TEMPERATURES},
    )
    rejected_budget: int = field(
        default=8,
        metadata={"help": "N_r: random responses sampled per prompt (8).", "rule": WHOLE},
    )
    pairs_per_prompt: int = field(
        default=1, metadata={"help": "Eq. 6 pairs kept per prompt (1).", "rule": WHOLE}
    )
    max_length_gap: float | None = field(
        default=0.1,
        metadata={
            "help": "Longest length difference inside a pair, relative to the longer response "
            "(0.1; 'none': eq. 6 alone).",
            **GAP,
        },
    )
    overlap: Method = field(
        default="token",
        metadata={"help": "Overlap filter: token, embedding or none (-RF) (token)."},
    )
    pii_filters: str = field(
        default="all",
        metadata={
            "help": "Built-in output filters (the gateway's --pii-filters): a candidate list "
            "holding a query they refuse is never the chosen response (all; none; or a comma "
            "list of url, email, phone, card, iban).",
            **PII,
        },
    )
    blocklist_file: Path | None = field(
        default=None,
        metadata={
            "help": "Blocklist file (YAML/JSON: terms, regexes; the gateway's --blocklist-file): "
            "a candidate list it refuses is never the chosen response."
        },
    )
    no_beam: bool = field(
        default=False, metadata={"help": "-BS ablation: best random sample is chosen."}
    )
    beta: float = field(
        default=0.1, metadata={"help": "DPO's KL strength (0.1).", "rule": positive()}
    )
    lr: float = field(default=5e-4, metadata={"help": "Learning rate (5e-4).", "rule": positive()})
    epochs: float = field(
        default=2.0, metadata={"help": "Passes over each round's pairs (2).", "rule": positive()}
    )
    sft_weight: float = field(
        default=3.0,
        metadata={
            "help": "Weight of the NLL term on the chosen response (RPO; 0 = pure DPO) (3.0).",
            "rule": at_least(0),
        },
    )
    batch_size: int = field(default=16, metadata={"help": "Pairs per step (16).", "rule": WHOLE})
    lora: bool = field(
        default=False, metadata={"help": "LoRA adapters; reference = adapters disabled."}
    )
    device: str = field(default="cpu", metadata={"help": "cpu or cuda."})
    bf16: bool = field(
        default=False, metadata={"help": "bf16 mixed precision for the DPO rounds (CUDA)."}
    )
    seed: int = field(default=0, metadata={"help": "Sampling and data order seed (0)."})
    no_progress: bool = field(default=False, metadata={"help": "Hide the progress bars."})
    result_file: Path | None = field(default=None, metadata={"help": RESULT_FILE_HELP})

    def __post_init__(self) -> None:
        validate(self)

    def output_filter(self) -> OutputFilter | None:
        """The output filter of --pii-filters and --blocklist-file (reads the file; a bad one
        is a SafetyError naming it); None when both are off."""
        f = output_filter(self.pii_filters, self.blocklist_file)
        return f if f.active else None

    def iter_config(self) -> IterConfig:
        """The algorithm's knobs these flags set."""
        return IterConfig(
            max_iterations=self.max_iterations,
            delta=self.delta,
            prompts_per_iteration=self.prompts_per_iteration,
            pairs=PairConfig(
                beam=BeamConfig(
                    beam_size=self.beam_size,
                    candidates=self.candidates,
                    temperatures=self.temperatures,
                ),
                rejected_budget=self.rejected_budget,
                pairs_per_prompt=self.pairs_per_prompt,
                max_length_gap=self.max_length_gap,
                use_beam=not self.no_beam,
                safety=self.output_filter(),
            ),
            pref=PrefOptions(
                beta=self.beta,
                lr=self.lr,
                epochs=self.epochs,
                sft_weight=self.sft_weight,
                batch_size=self.batch_size,
                lora=self.lora,
                device=self.device,
                bf16=self.bf16,
                progress=not self.no_progress,
            ),
            overlap=self.overlap,
            eval_temperature=self.eval_temperature,
            eval_top_p=self.eval_top_p,
            seed=self.seed,
        )


def prompt_pool(cfg: DPOIterateConfig) -> int:
    """Training prompts kept from the logs: ``--max-prompts``, or by default enough for every
    iteration to get fresh ones (at least ``MIN_PROMPT_POOL``). The pool is a prefix of a fixed
    shuffle, so a larger pool (a rerun with a higher cap) keeps the earlier iterations' prompts."""
    if cfg.max_prompts is not None:
        return int(cfg.max_prompts)
    return max(MIN_PROMPT_POOL, int(cfg.prompts_per_iteration) * int(cfg.max_iterations))
