"""``sft``'s configuration: one field a flag (``gqr_training.cliconfig``), and the one mapping
of those flags onto the trainer's :class:`~gqr_training.align.sft.SFTOptions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gqr_training.cliconfig import at_least, positive, validate
from gqr_training.window import RESULT_FILE_HELP

if TYPE_CHECKING:
    from gqr_training.align.sft import SFTOptions

WHOLE = at_least(1, "a whole number")


@dataclass(kw_only=True)
class SFTCommandConfig:
    """Everything ``sft`` is told: the data, the model, the knobs and the output."""

    data: Path = field(metadata={"help": "JSON Lines of {prompt, completion}."})
    out: Path = field(metadata={"help": "Folder for the fine-tuned model + tokenizer."})
    model: str | None = field(
        default=None,
        metadata={"help": "Local model folder; default: a tiny LM built from scratch."},
    )
    epochs: float = field(
        default=3.0, metadata={"help": "Passes over the data (3).", "rule": positive()}
    )
    lr: float | None = field(
        default=None, metadata={"help": "Default 1e-3 full / 2e-4 LoRA.", "rule": positive()}
    )
    batch_size: int = field(default=32, metadata={"help": "Examples per step (32).", "rule": WHOLE})
    lora: bool = field(default=False, metadata={"help": "LoRA adapters (merged at the end)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (16).", "rule": WHOLE})
    max_length: int = field(
        default=512,
        metadata={"help": "Longest prompt + completion, in tokens (512).", "rule": WHOLE},
    )
    device: str = field(default="cpu", metadata={"help": "cpu or cuda."})
    bf16: bool = field(default=False, metadata={"help": "bf16 mixed precision (CUDA)."})
    seed: int = field(default=0, metadata={"help": "Shuffling and initialisation seed (0)."})
    no_progress: bool = field(default=False, metadata={"help": "Hide the progress bar."})
    result_file: Path | None = field(default=None, metadata={"help": RESULT_FILE_HELP})

    def __post_init__(self) -> None:
        validate(self)

    def options(self) -> SFTOptions:
        from gqr_training.align.sft import SFTOptions

        return SFTOptions(
            epochs=self.epochs,
            lr=self.lr or (2e-4 if self.lora else 1e-3),
            batch_size=self.batch_size,
            lora=self.lora,
            lora_r=self.lora_r,
            max_length=self.max_length,
            device=self.device,
            bf16=self.bf16,
            seed=self.seed,
            progress=not self.no_progress,
        )
