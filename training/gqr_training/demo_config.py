"""``gqr demo``'s configuration: one field a flag (``gqr_training.cliconfig``). Its CTR and DPO
steps run the pipeline's own commands, so it builds their configs
(:meth:`DemoConfig.ctr_train`, :meth:`DemoConfig.dpo_iterate`) instead of mapping its flags
onto the trainers a second time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from gqr_training.align.iterate_config import (
    WHOLE,
    DPOIterateConfig,
    IterConfig,
)
from gqr_training.align.overlap import Method
from gqr_training.cliconfig import at_least, like, positive, validate
from gqr_training.ctr.train_config import CTRTrainConfig

DESCRIPTION = (
    "Simulate 14 days of logs, build COR, train the CTR predictor, SFT a tiny LM (or --model), "
    "run iterative DPO, then a simulated A/B test; write a report under --out."
)


@dataclass(kw_only=True)
class DemoConfig:
    """Everything ``gqr demo`` is told: the world, each step's size and knobs, the output."""

    out: Path = field(default=Path("gqr-demo"), metadata={"help": "Output folder (./gqr-demo)."})
    model: str | None = field(
        default=None,
        metadata={"help": "Local LLM folder; default: a tiny LM built from scratch."},
    )
    device: str = field(default="cpu", metadata={"help": "cpu or cuda."})
    seed: int = field(default=0, metadata={"help": "World seed (0)."})
    days: int = field(default=14, metadata={"help": "Days of logged traffic (14).", "rule": WHOLE})
    impressions_per_day: int = field(
        default=10000, metadata={"help": "Logged impressions a day (10000).", "rule": WHOLE}
    )
    sft_requests: int = field(
        default=2000, metadata={"help": "Annotated requests for SFT (2000).", "rule": WHOLE}
    )
    sft_epochs: float = field(default=2.0, metadata={"help": "SFT epochs (2).", "rule": positive()})
    train_prompts: int = field(
        default=320, metadata={"help": "DPO prompts per iteration (320).", "rule": WHOLE}
    )
    test_prompts: int = field(
        default=300, metadata={"help": "Fixed AEC test set size (300).", "rule": WHOLE}
    )
    max_iterations: int = like(DPOIterateConfig, "max_iterations", help="Most DPO iterations (3).")
    delta: float = like(DPOIterateConfig, "delta", help="Stop when AEC gains less (0.005).")
    ab_requests: int = field(
        default=16000, metadata={"help": "A/B requests, both arms together (16000).", "rule": WHOLE}
    )
    ctr_epochs: int = like(CTRTrainConfig, "epochs", help="CTR predictor epochs (6).")
    ctr_hidden: int = like(CTRTrainConfig, "hidden", help="CTR encoder width (64).")
    ctr_layers: int = like(CTRTrainConfig, "layers", help="CTR encoder layers (2).")
    ctr_heads: int = like(CTRTrainConfig, "heads", help="CTR encoder attention heads (2).")
    ctr_negative_rate: float = like(
        CTRTrainConfig,
        "negative_rate",
        help="Share of non-clicked examples the CTR predictor sees per epoch (0.1; corrected).",
    )
    ctr_impressions: int | None = field(
        default=None,
        metadata={"help": "Latest logged impressions the CTR predictor trains on (default: all)."},
    )
    dpo_lr: float = like(DPOIterateConfig, "lr", help="DPO learning rate (5e-4).")
    dpo_epochs: float = like(DPOIterateConfig, "epochs", help="Passes over each round's pairs (2).")
    sft_weight: float = like(
        DPOIterateConfig,
        "sft_weight",
        help="NLL term on the chosen response beside DPO's loss (RPO; 0 = pure DPO) (3.0).",
    )
    candidates: int = like(DPOIterateConfig, "candidates")
    pairs_per_prompt: int = like(DPOIterateConfig, "pairs_per_prompt")
    max_length_gap: float | None = like(
        DPOIterateConfig,
        "max_length_gap",
        help="Longest relative length difference inside a DPO pair (0.1; 'none').",
    )
    beam_temperatures: tuple[float, ...] = like(DPOIterateConfig, "temperatures")
    rejected_temperature: float = field(
        default=1.0,
        metadata={"help": "Temperature of the N_r random responses (1.0).", "rule": at_least(0)},
    )
    lora: bool = field(
        default=False, metadata={"help": "LoRA for SFT and DPO instead of full weights."}
    )
    overlap: Method = like(DPOIterateConfig, "overlap")  # noqa: RUF009 (a new field() per call)
    threads: int = field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        metadata={
            "help": "torch CPU threads (default: the machine's cores, at most 4).",
            "rule": WHOLE,
        },
    )
    no_progress: bool = field(default=False, metadata={"help": "Hide progress bars."})

    def __post_init__(self) -> None:
        validate(self)

    def ctr_train(self, logs: Path, end: datetime) -> CTRTrainConfig:
        """The ``ctr-train`` run of the CTR step: the logged window, ctr-train's defaults
        for what the demo has no flag for."""
        return CTRTrainConfig(
            logs=str(logs),
            out=str(self.out / "ctr"),
            version="demo",
            end=end.isoformat(),
            window_days=self.days,
            epochs=self.ctr_epochs,
            device=self.device,
            threads=self.threads,
            hidden=self.ctr_hidden,
            layers=self.ctr_layers,
            heads=self.ctr_heads,
            intermediate=4 * self.ctr_hidden,
            negative_rate=self.ctr_negative_rate,
            max_train_impressions=self.ctr_impressions or None,
            no_progress=self.no_progress,
        )

    def dpo_iterate(self, model: Path, ctr: Path) -> DPOIterateConfig:
        """The ``dpo-iterate`` run of the DPO step (its prompts come from the world)."""
        return DPOIterateConfig(
            model=str(model),
            ctr=str(ctr),
            out=self.out / "llm" / "dpo",
            max_iterations=self.max_iterations,
            delta=self.delta,
            prompts_per_iteration=self.train_prompts,
            candidates=self.candidates,
            temperatures=self.beam_temperatures,
            pairs_per_prompt=self.pairs_per_prompt,
            max_length_gap=self.max_length_gap,
            overlap=self.overlap,
            lr=self.dpo_lr,
            epochs=self.dpo_epochs,
            sft_weight=self.sft_weight,
            lora=self.lora,
            device=self.device,
            seed=self.seed,
            no_progress=self.no_progress,
        )

    def iter_config(self, model: Path, ctr: Path) -> IterConfig:
        """:meth:`dpo_iterate`'s knobs, with the demo's temperature of the rejected samples."""
        cfg = self.dpo_iterate(model, ctr).iter_config()
        cfg.pairs.temperature = self.rejected_temperature
        return cfg
