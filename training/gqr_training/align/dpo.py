"""One round of preference training with TRL: DPO (``DPOTrainer``), and for the Table 3
baselines KTO (``KTOTrainer``) and SimPO (``CPOTrainer``, ``loss_type="simpo"``).

Reference model: with LoRA, the policy with its adapters disabled (the adapters are merged at
the end of the round, so the next round's reference is this round's policy); with full weights,
an explicit frozen copy of the policy (TRL 1.16 would otherwise try to reload the reference from
the model's config path, which does not exist for a model built in memory).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Algo = Literal["dpo", "kto", "simpo"]


@dataclass
class PrefOptions:
    """Preference-training hyper-parameters."""

    algo: Algo = "dpo"
    """dpo (DPOTrainer), kto (KTOTrainer, unpaired) or simpo (CPOTrainer, reference-free)."""
    beta: float = 0.1
    """KL strength (DPO/KTO); SimPO's reward scale."""
    lr: float = 2e-4
    """Learning rate; about 5e-7 for a real full model, 5e-5 LoRA."""
    epochs: float = 2.0
    """Passes over the pairs."""
    batch_size: int = 16
    """Pairs per step."""
    lora: bool = False
    """LoRA adapters (reference = adapters disabled), merged after the round."""
    lora_r: int = 16
    """LoRA rank."""
    max_length: int = 512
    """Longest prompt + response, in tokens."""
    device: str = "cpu"
    """cpu or cuda."""
    bf16: bool = False
    """bf16 mixed precision (CUDA with bf16 support only)."""
    sft_weight: float = 0.0
    """DPO only: weight of an NLL (SFT) term on the chosen response beside the DPO loss (TRL's
    ``loss_type=["sigmoid", "sft"]``, RPO); keeps the chosen likelihood from falling with the
    rejected one, which is how pure DPO collapses a small policy at a high learning rate."""
    seed: int = 0
    """Data order seed."""
    progress: bool = True
    """Show the tqdm bar."""


def frozen_copy(model: Any) -> Any:
    ref = copy.deepcopy(model)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def _dpo_loss(opts: PrefOptions) -> dict[str, Any]:
    if opts.sft_weight <= 0:
        return {}
    return {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, opts.sft_weight]}


def _common(opts: PrefOptions, out_dir: Path) -> dict[str, Any]:
    from gqr_training.align.sft import trainer_args

    return {
        **trainer_args(opts, out_dir),
        "logging_steps": 5,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": 0.1,  # < 1: a fraction of the steps (transformers 5 dropped warmup_ratio)
    }


def train_preferences(
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    opts: PrefOptions,
) -> tuple[Any, dict[str, float]]:
    """Train on ``rows`` ({prompt, chosen, rejected}; KTO: {prompt, completion, label}); returns
    the trained policy (LoRA merged) and the logged metrics of the last steps."""
    import importlib

    from datasets import Dataset

    from gqr_training.align.sft import datasets_bars, lora_config, train_merged

    datasets_bars(opts.progress)
    data = Dataset.from_list(list(rows))
    peft = lora_config(opts.lora_r) if opts.lora else None
    ref = None if (opts.lora or opts.algo == "simpo") else frozen_copy(model)
    common = _common(opts, Path(out_dir))
    if opts.algo == "dpo":
        trl: Any = importlib.import_module("trl")
        trainer: Any = trl.DPOTrainer(
            model=model,
            ref_model=ref,
            args=trl.DPOConfig(beta=opts.beta, **_dpo_loss(opts), **common),
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=peft,
        )
    elif opts.algo == "kto":
        trl = importlib.import_module("trl")
        trainer = trl.KTOTrainer(
            model=model,
            ref_model=ref,
            args=trl.KTOConfig(beta=opts.beta, **common),
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=peft,
        )
    elif opts.algo == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        trainer = CPOTrainer(
            model=model,
            args=CPOConfig(loss_type="simpo", cpo_alpha=0.0, beta=opts.beta * 20, **common),
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=peft,
        )
    else:
        raise ValueError(f"algo={opts.algo!r}: expected dpo, kto or simpo")
    result, trained = train_merged(trainer, opts)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    metrics = {"train_loss": float(result.training_loss), "rows": float(len(rows))}
    if logs:
        for key in ("rewards/accuracies", "rewards/margins", "loss"):
            if key in logs[-1]:
                metrics[f"last_{key.replace('/', '_')}"] = float(logs[-1][key])
    del trainer, ref
    return trained, metrics


def kto_rows(pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unpaired KTO data from pairs: chosen = desirable, rejected = undesirable."""
    out: list[dict[str, Any]] = []
    for p in pairs:
        out.append({"prompt": p["prompt"], "completion": p["chosen"], "label": True})
        out.append({"prompt": p["prompt"], "completion": p["rejected"], "label": False})
    return out
