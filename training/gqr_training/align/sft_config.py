"""``sft``'s configuration: one field a flag (``gqr_training.cliconfig``), and the one mapping
of those flags onto the trainer's :class:`~gqr_training.align.sft.SFTOptions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gqr_training.align.metrics import SERVING_TEMPERATURE, SERVING_TOP_P
from gqr_training.cliconfig import Rule, at_least, positive, validate, within
from gqr_training.window import RESULT_FILE_HELP, end_field, window_days_field

if TYPE_CHECKING:
    from gqr_training.align.sft import SFTOptions

WHOLE = at_least(1, "a whole number")


@dataclass(kw_only=True)
class SFTCommandConfig:
    """Everything ``sft`` is told: the data, the model, the knobs, the output and, for the
    bootstrap stage's gate, the CTR predictor and the log window of the test set."""

    data: str = field(
        metadata={
            "help": "JSON Lines of {prompt, completion}: a file, or an annotations version "
            "(gqr annotate --publish; any URI form) holding sft.jsonl."
        }
    )
    out: Path = field(metadata={"help": "Folder for the fine-tuned model + tokenizer."})
    model: str | None = field(
        default=None,
        metadata={
            "help": "The model to fine-tune (weights + tokenizer): a folder, pvc://, s3://, "
            "gs:// or hf://org/name[@revision]; default: a tiny LM built from scratch."
        },
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
    version: str | None = field(
        default=None, metadata={"help": "Model version reported (default: --out's name)."}
    )
    publish: str | None = field(
        default=None,
        metadata={
            "help": "Model store (a folder, pvc://, s3://, gs://): publish the model whole as "
            "<publish>/<version> and report that URI (default: report --out)."
        },
    )
    ctr: str | None = field(
        default=None,
        metadata={
            "help": "CTR predictor artifact (any URI form) or py:MODULE:FACTORY: report the AEC "
            "of the fine-tuned model (aec) and of --model as served (aec_stable) on the "
            "--logs test set, the operator's gate."
        },
    )
    logs: str | None = field(
        default=None, metadata={"help": "Log store root: the gate's test prompts (with --ctr)."}
    )
    window_days: int = window_days_field()
    end: str = end_field()
    cor: str | None = field(
        default=None,
        metadata={"help": "COR artifact root: refresh the test prompts' co-occurring queries."},
    )
    cor_k: int = field(
        default=10,
        metadata={"help": "Co-occurring queries per test prompt (10).", "rule": at_least(0)},
    )
    test_size: int = field(
        default=256, metadata={"help": "Test prompts kept from --logs (256).", "rule": WHOLE}
    )
    task: str = field(default="suggestion", metadata={"help": "Task preset (suggestion)."})
    stable_few_shot: int = field(
        default=0,
        metadata={
            "help": "Demonstrations before the stable model's test prompts: the few-shot "
            "prompting the gateway serves --model with (0).",
            "rule": within(0, 16, "a whole number"),
        },
    )
    eval_temperature: float = field(
        default=SERVING_TEMPERATURE,
        metadata={
            "help": f"Temperature of the test responses, the served one ({SERVING_TEMPERATURE}).",
            "rule": at_least(0),
        },
    )
    eval_top_p: float = field(
        default=SERVING_TOP_P,
        metadata={
            "help": f"Top-p of the test responses, the served one ({SERVING_TOP_P}).",
            "rule": Rule(lambda v: 0 < v <= 1, "expected a top-p in (0, 1]"),
        },
    )
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
