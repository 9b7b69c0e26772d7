"""``ctr-train``'s configuration: one field a flag (``gqr_training.cliconfig``), and the one
mapping of those flags onto the model's config and the training loop's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from gqr_training.cliconfig import Rule, at_least, positive, validate, within
from gqr_training.ctr.inputs import Variant
from gqr_training.window import RESULT_FILE_HELP, end_field, window_days_field

if TYPE_CHECKING:
    from gqr_training.ctr.loop import FitOptions
    from gqr_training.ctr.model import Backbone, CTRConfig

WHOLE = at_least(1, "a whole number")
BACKBONES = ("bert", "albert", "roberta")


def parse_prior(text: str) -> float | None:
    return None if text == "auto" else float(text)


@dataclass(kw_only=True)
class CTRTrainConfig:
    """Everything ``ctr-train`` is told: the log window, the artifact and the model."""

    logs: str = field(metadata={"help": "Log store root (local path or fsspec URL)."})
    out: str = field(
        metadata={
            "help": "Artifact store of the CTR predictor (a folder, pvc://, s3:// or gs://); "
            "the artifact is published whole as <out>/<version>/."
        }
    )
    version: str | None = field(
        default=None, metadata={"help": "Artifact version (default: UTC timestamp)."}
    )
    window_days: int = window_days_field()
    end: str = end_field()
    result_file: Path | None = field(default=None, metadata={"help": RESULT_FILE_HELP})
    backbone: str = field(
        default="bert",
        metadata={"help": "Encoder backbone (bert).", "choices": BACKBONES},
    )
    variant: Variant = field(
        default="ctx",
        metadata={
            "help": "Input variant (Table 2): base, pid (position of k) or ctx (preceding "
            "queries) (ctx)."
        },
    )
    pretrained: str | None = field(
        default=None,
        metadata={
            "help": "Pretrained encoder (weights + tokenizer): a folder, pvc://, s3://, gs:// "
            "or hf://org/name[@revision]."
        },
    )
    # Defaults: the best CPU configuration measured (README "Defaults"): on 61k training
    # impressions of the simulated world, AUC 0.748 in 64 s, against 0.742 in 365 s for the
    # earlier 128-wide, all-negatives, lr 5e-4 defaults.
    layers: int = field(default=2, metadata={"help": "Encoder layers (2).", "rule": WHOLE})
    hidden: int = field(default=64, metadata={"help": "Encoder width (64).", "rule": WHOLE})
    heads: int = field(default=2, metadata={"help": "Attention heads (2).", "rule": WHOLE})
    intermediate: int = field(
        default=256, metadata={"help": "Feed-forward width (256).", "rule": WHOLE}
    )
    embedding_size: int = field(
        default=64, metadata={"help": "ALBERT's factorised embedding size.", "rule": WHOLE}
    )
    vocab_size: int = field(
        default=4000,
        metadata={"help": "WordPiece vocabulary trained on the logs.", "rule": WHOLE},
    )
    dropout: float = field(
        default=0.1,
        metadata={
            "help": "Dropout of a new encoder and its head (0.1; a --pretrained one keeps its "
            "own).",
            "rule": Rule(lambda v: 0 <= v < 1, "expected a share in [0, 1)"),
        },
    )
    max_positions: int = field(
        default=8,
        metadata={"help": "List positions embedded (8).", "rule": within(1, 64, "a whole number")},
    )
    max_length: int = field(
        default=64, metadata={"help": "Longest input, in tokens (64).", "rule": WHOLE}
    )
    max_query_tokens: int = field(
        default=16, metadata={"help": "Longest query kept, in tokens (16).", "rule": WHOLE}
    )
    epochs: int = field(default=6, metadata={"help": "Most training epochs (6).", "rule": WHOLE})
    batch_size: int = field(
        default=128, metadata={"help": "Instances per step (128).", "rule": WHOLE}
    )
    lr: float = field(
        default=1e-3, metadata={"help": "Peak learning rate (1e-3).", "rule": positive()}
    )
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay (0.01).", "rule": at_least(0)}
    )
    warmup_ratio: float = field(
        default=0.05,
        metadata={"help": "Share of the steps spent warming up (0.05).", "rule": within(0, 1)},
    )
    negative_rate: float = field(
        default=0.1,
        metadata={
            "help": "Share of negatives kept per epoch (a fresh draw each epoch; 1 = all); "
            "predictions are corrected for it (0.1).",
            "rule": Rule(lambda v: 0 < v <= 1, "expected a share in (0, 1]"),
        },
    )
    match_embedding: bool = field(
        default=True,
        metadata={
            "help": "Exact-match embedding: tokens shared with the user query / other shown "
            "queries.",
            "negatable": True,
        },
    )
    patience: int = field(
        default=2,
        metadata={"help": "Epochs without logloss gain before stopping.", "rule": WHOLE},
    )
    user_propensity: bool = field(
        default=True,
        metadata={
            "help": "Per-user click multipliers fitted after training (users.py; not in the "
            "paper).",
            "negatable": True,
        },
    )
    user_prior: float | None = field(
        default=None,
        metadata={
            "help": "Expected clicks a user's multiplier is shrunk towards 1 with (default auto: "
            "the best of 2, 5, 10, 20, 50 on the training window's last day).",
            "parse": parse_prior,
            "rule": Rule(lambda v: v > 0, "expected auto or a positive number of expected clicks"),
        },
    )
    max_train_impressions: int | None = field(
        default=None, metadata={"help": "Keep the latest N for training.", "rule": WHOLE}
    )
    seed: int = field(default=0, metadata={"help": "Initialisation and shuffling seed (0)."})
    device: str = field(default="cpu", metadata={"help": "cpu or cuda (bf16 autocast on cuda)."})
    threads: int | None = field(
        default=None, metadata={"help": "CPU threads for torch.", "rule": WHOLE}
    )
    checkpoint_dir: Path | None = field(
        default=None,
        metadata={
            "help": "Default: <out>/.checkpoints/<version> (a folder --out), else "
            "<work-dir>/checkpoints."
        },
    )
    work_dir: Path | None = field(
        default=None,
        metadata={
            "help": "Local folder the artifact is built in before publishing (default: "
            "<out>/.work/<version> for a folder --out, else $GQR_WORK_DIR or a temporary one)."
        },
    )
    resume: bool = field(
        default=False, metadata={"help": "Continue from the checkpoint when one exists."}
    )
    no_progress: bool = field(default=False, metadata={"help": "Hide the tqdm progress bars."})

    def __post_init__(self) -> None:
        validate(self)

    def model_config(self) -> CTRConfig:
        """The predictor's config (its backbone's is set where the tokenizer is known)."""
        from gqr_training.ctr.model import CTRConfig

        return CTRConfig(
            backbone=cast("Backbone", self.backbone),
            variant=self.variant,
            max_positions=self.max_positions,
            max_length=self.max_length,
            max_query_tokens=self.max_query_tokens,
            head_hidden=self.hidden,
            negative_sampling_rate=self.negative_rate,
            match_embedding=self.match_embedding,
        )

    def backbone_config(self, vocab_size: int, pad_token_id: int) -> Any:
        """A tiny backbone of this config's shape, for a tokenizer trained on the logs."""
        from gqr_training.ctr.model import tiny_backbone_config

        return tiny_backbone_config(
            cast("Backbone", self.backbone),
            vocab_size,
            pad_token_id,
            hidden=self.hidden,
            layers=self.layers,
            heads=self.heads,
            intermediate=self.intermediate,
            max_length=self.max_length,
            embedding_size=self.embedding_size,
            dropout=self.dropout,
        )

    def fit_options(self) -> FitOptions:
        from gqr_training.ctr.loop import FitOptions

        return FitOptions(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_ratio=self.warmup_ratio,
            patience=self.patience,
            seed=self.seed,
            device=self.device,
            progress=not self.no_progress,
        )
