"""``sft``: supervised fine-tuning on prompt/completion pairs rendered by the universal template
(TRL ``SFTTrainer``, loss on the completion only), full weights or LoRA.

    sft --data sft.jsonl --out /artifacts/llm/sft-v1 --epochs 3            # tiny LM from scratch
    sft --data sft.jsonl --model /models/qwen2.5-0.5b --lora --out ...      # a real local model
    sft --data /artifacts/annotations/3 --model hf://Qwen/Qwen2.5-0.5B-Instruct --lora \
        --ctr /artifacts/ctr/3 --logs /logs --stable-few-shot 3 \
        --out /work/llm-3 --publish /artifacts/llm --version 3      # the bootstrap stage

``--data`` is JSON Lines of ``{"prompt": ..., "completion": ...}`` (``gqr annotate`` writes it).
With ``--ctr`` the result carries the bootstrap gate's ``aec`` and ``aec_stable``
(``gqr_training.align.sft_gate``). The last stdout line is a JobResult JSON.

Under ``torchrun --nproc-per-node N`` every rank trains (TRL's trainer through accelerate: DDP,
``--batch-size`` rows per process; its loss is averaged over the tokens of all ranks, so N x b
trains like one process with N x b over whole global batches); rank 0 alone measures the gate,
saves, publishes and prints the JobResult. A tiny LM from scratch gets rank 0's tokenizer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gqr_training import distributed
from gqr_training.align.sft_config import SFTCommandConfig
from gqr_training.cliconfig import ConfigParser

if TYPE_CHECKING:
    from gqr_training.align.dpo import PrefOptions


@dataclass
class SFTOptions:
    """SFT hyper-parameters."""

    epochs: float = 3.0
    """Passes over the data."""
    lr: float = 1e-3
    """Peak learning rate (cosine decay); use about 2e-5 for a real full model, 2e-4 LoRA."""
    batch_size: int = 32
    """Examples per step."""
    lora: bool = False
    """Train LoRA adapters (merged into the weights at the end) instead of all weights."""
    lora_r: int = 16
    """LoRA rank."""
    max_length: int = 512
    """Longest prompt + completion, in tokens (longer ones are truncated)."""
    device: str = "cpu"
    """cpu or cuda."""
    bf16: bool = False
    """bf16 mixed precision (CUDA with bf16 support only)."""
    seed: int = 0
    """Shuffling and initialisation seed."""
    progress: bool = True
    """Show the tqdm bar."""
    logging_steps: int = 10
    """Log the loss every this many steps."""


def lora_config(r: int) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=2 * r,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def quiet_trainer(trainer: Any, progress: bool) -> Any:
    """Without progress bars, also drop the per-step log dicts transformers then prints
    (``PrinterCallback``) and the datasets ``map`` bars: ``--no-progress`` means quiet."""
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def datasets_bars(progress: bool) -> None:
    """The datasets ``map`` bars: shown by rank 0 alone (under torchrun), when asked."""
    import datasets

    if progress and distributed.is_main():
        datasets.enable_progress_bars()
    else:
        datasets.disable_progress_bars()


def trainer_args(opts: SFTOptions | PrefOptions, out_dir: str | Path) -> dict[str, Any]:
    """The TRL config arguments SFT and preference training take from their options alike:
    length of training, step size, device and precision, bars; no checkpoints, no reports."""
    return {
        "output_dir": str(out_dir),
        "num_train_epochs": opts.epochs,
        "learning_rate": opts.lr,
        "per_device_train_batch_size": opts.batch_size,
        "max_length": opts.max_length,
        "save_strategy": "no",
        "report_to": [],
        "seed": opts.seed,
        "use_cpu": opts.device == "cpu",
        "bf16": opts.bf16,
        "disable_tqdm": not opts.progress,
        **_checkpointing(),
    }


def _checkpointing() -> dict[str, Any]:
    """Activation (gradient) checkpointing on, as TRL's configs default to; named
    ``activation_checkpointing`` where transformers has that name (5.x: TRL's default for the
    old ``gradient_checkpointing`` alone warns that the alias goes in transformers 6)."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return {"activation_checkpointing": True} if "activation_checkpointing" in names else {}


def train_merged(trainer: Any, opts: SFTOptions | PrefOptions) -> tuple[Any, Any]:
    """Run ``trainer`` (quiet without progress bars): its train result and the trained model,
    LoRA adapters merged into the weights. Under torchrun the result's ``training_loss`` is the
    mean of the ranks' (each rank's own is over its part of every batch)."""
    result = quiet_trainer(trainer, opts.progress).train()
    if distributed.world_size() > 1:
        losses = distributed.all_gather(float(result.training_loss))
        result = result._replace(training_loss=sum(losses) / len(losses))
    trained = trainer.model
    if opts.lora:
        trained = trained.merge_and_unload()
    return result, trained


def train_sft(
    model: Any, tokenizer: Any, rows: list[dict[str, str]], out_dir: str | Path, opts: SFTOptions
) -> tuple[Any, dict[str, float]]:
    """Fine-tune ``model`` on the rows (``{prompt, completion}``, or ``{text}`` for plain
    language modelling); returns the trained model (LoRA merged) and metrics."""
    import importlib

    from datasets import Dataset

    trl: Any = importlib.import_module("trl")
    datasets_bars(opts.progress)
    args = trl.SFTConfig(
        lr_scheduler_type="cosine",
        warmup_steps=0.03,  # < 1: a fraction of the steps (transformers 5 dropped warmup_ratio)
        # prompt/completion rows: loss on the completion only; text rows: plain language model
        completion_only_loss=bool(rows) and "prompt" in rows[0],
        logging_steps=opts.logging_steps,
        dataloader_num_workers=0,
        **trainer_args(opts, out_dir),
    )
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(opts.lora_r) if opts.lora else None,
    )
    result, trained = train_merged(trainer, opts)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "train_loss": float(result.training_loss),
        "first_loss": float(losses[0]) if losses else float("nan"),
        "last_loss": float(losses[-1]) if losses else float("nan"),
        "examples": float(len(rows)),
    }
    return trained, metrics


def make_parser() -> ConfigParser[SFTCommandConfig]:
    return ConfigParser(SFTCommandConfig, prog="sft", description=__doc__.split("\n\n")[0])


def build_or_load(model_path: str | None, rows: list[dict[str, str]], device: str) -> Any:
    """``(model, tokenizer)``: a local model, or a tiny LM with a tokenizer trained on ``rows``."""
    from gqr_training.align import tinylm

    if model_path:
        return tinylm.load(model_path, device)
    # one vocabulary for every rank: rank 0's (a word's id must not depend on the process)
    tok = distributed.broadcast(tinylm.tokenizer_for_rows(rows) if distributed.is_main() else None)
    return tinylm.build_model(tok).to(device), tok


def load_rows(data: str) -> list[dict[str, str]]:
    """The ``{prompt, completion}`` rows of ``--data``: a file, or an annotations version
    (``gqr annotate --publish``, any URI form) holding ``sft.jsonl``."""
    from gqr_training.align.annotate import ANNOTATIONS_FILE
    from gqr_training.align.data import read_jsonl
    from gqr_training.output import input_dir

    path = Path(data)
    if "://" in data or path.is_dir():
        path = Path(input_dir(data, require=(ANNOTATIONS_FILE,))) / ANNOTATIONS_FILE
    rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in read_jsonl(path)]
    if not rows:
        raise ValueError(f"--data {data}: no {{prompt, completion}} rows to fine-tune on")
    return rows


def model_folder(uri: str | None) -> str | None:
    """``--model`` as a local folder; a model without its tokenizer fails here, naming it."""
    if not uri:
        return None
    from gqr_serving.storage import StorageError
    from gqr_training.output import input_dir

    try:
        return input_dir(uri, require=("config.json", "tokenizer_config.json"))
    except StorageError as exc:
        if "tokenizer_config.json" in str(exc):
            raise StorageError(
                f"--model {uri} has no tokenizer (tokenizer_config.json): fine-tuning and "
                "serving need the model's own tokenizer next to its weights"
            ) from None
        raise


def run(cfg: SFTCommandConfig) -> dict[str, Any]:
    """Fine-tune (measuring the gate around it with --ctr), save and publish; returns the
    JobResult fields (none on ranks other than 0)."""
    from gqr_serving.storage import ArtifactStore
    from gqr_training.align import tinylm
    from gqr_training.align.sft_gate import gate_metrics, load_gate
    from gqr_training.output import publish_once

    main = distributed.is_main()
    rows = load_rows(cfg.data)
    base = model_folder(cfg.model)
    gate = load_gate(cfg) if main else None  # rank 0 measures; the others wait at its barrier
    model, tok = build_or_load(base, rows, cfg.device)
    stable = gate.aec(model, tok, cfg.stable_few_shot) if gate else None
    distributed.barrier()
    model, metrics = train_sft(model, tok, rows, cfg.out / ".trainer", cfg.options())
    if not main:
        return {}
    if gate is not None and stable is not None:
        metrics.update(gate_metrics(stable, gate.aec(model, tok)))
    tinylm.save(model, tok, cfg.out)
    version = cfg.version or cfg.out.name
    uri = str(cfg.out.absolute())
    if cfg.publish:
        import shutil

        shutil.rmtree(cfg.out / ".trainer", ignore_errors=True)
        uri = publish_once(ArtifactStore.at(cfg.publish), cfg.out, version)
    return {
        "version": version,
        "artifact_uri": uri,
        "metrics": {k: round(v, 6) for k, v in metrics.items()},
    }


def main(argv: list[str] | None = None) -> int:
    from gqr_training.jobresult import report

    cfg = make_parser().parse_config(argv)

    return report("sft", lambda: distributed.joined(cfg.device, lambda: run(cfg)), cfg.result_file)


if __name__ == "__main__":
    sys.exit(main())
