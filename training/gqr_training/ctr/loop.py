"""The training loop: epochs of AdamW on BCE with per-epoch evaluation on the held-out day,
checkpoints, early stopping and resumption. No I/O besides the checkpoint directory.

Under torchrun (``gqr_training.distributed``) the model is wrapped in DistributedDataParallel
and every rank draws the same epoch plan (sampling, order, length buckets of ``batch_size`` x
ranks instances); each global batch is cut into one contiguous part per rank, and each rank's
loss is its examples' BCE sum over the global batch's size times the ranks, so the averaged
gradients are those of the whole batch: N ranks x ``batch_size`` b trains like one process
with N x b. The held-out day is predicted in parts and gathered; rank 0 alone checkpoints."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gqr_training import distributed
from gqr_training.ctr import checkpoint
from gqr_training.ctr.batches import InputEncoder, autocast, predict_probs
from gqr_training.ctr.calibration import downsample_negatives
from gqr_training.ctr.data import Instance, LoggedImpression
from gqr_training.ctr.evaluate import auc, logloss
from gqr_training.ctr.inputs import Encoded
from gqr_training.ctr.model import CTRModel

log = logging.getLogger("gqr_training.ctr")


@dataclass
class FitOptions:
    epochs: int = 3
    batch_size: int = 256
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    patience: int = 1
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    eval_batch_size: int = 1024


def make_optimizer(
    model: nn.Module, opts: FitOptions, total_steps: int
) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (no decay on biases and norms) with linear warmup and linear decay."""
    from transformers import get_linear_schedule_with_warmup

    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": opts.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=opts.lr,
    )
    warmup = int(total_steps * opts.warmup_ratio)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, max(1, total_steps))  # type: ignore[no-untyped-call]
    return optimizer, schedule


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    inputs: dict[str, torch.Tensor],
    labels: torch.Tensor,
    device: str,
    weights: torch.Tensor | None = None,
    scale: float = 1.0,
) -> float:
    """One optimisation step; returns the batch's BCE loss. ``model`` may be the DDP wrapper;
    with ``weights`` the loss is ``sum(weights * BCE) * scale`` (a rank's share of a global
    batch: padding rows weigh 0)."""
    model.train()
    with autocast(device):
        logits = model(**inputs)
    if weights is None:
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
    else:
        bce = nn.functional.binary_cross_entropy_with_logits(
            logits.float(), labels.float(), reduction="none"
        )
        loss = (bce * weights).sum() * scale
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def length_bucketed(
    encoder: InputEncoder,
    train: Sequence[LoggedImpression],
    items: Sequence[Instance],
    order: Sequence[int],
    batch_size: int,
    gen: torch.Generator,
    window: int = 50,
) -> Iterator[tuple[list[Encoded], list[int]]]:
    """Batches of similar length (less padding), in a random order: ``window`` batches at a
    time are encoded, sorted by length, cut into batches and shuffled."""
    span = batch_size * window
    for lo in range(0, len(order), span):
        idx = list(order[lo : lo + span])
        encoded = encoder.encode_instances(train, [items[i] for i in idx])
        by_len = sorted(range(len(idx)), key=lambda j: len(encoded[j].input_ids))
        groups = [by_len[b : b + batch_size] for b in range(0, len(by_len), batch_size)]
        for g in torch.randperm(len(groups), generator=gen).tolist():
            yield [encoded[j] for j in groups[g]], [idx[j] for j in groups[g]]


def rank_share(n: int, world: int, rank: int) -> tuple[list[int], list[float]]:
    """The positions of a global batch of ``n`` this rank trains on (a contiguous part) and
    their weights: every rank gets ``ceil(n / world)`` rows, the missing ones repeats of row 0
    weighing 0 (DDP needs every rank in every step)."""
    per = -(-n // world)
    own = list(range(rank * per, min(n, (rank + 1) * per)))
    return own + [0] * (per - len(own)), [1.0] * len(own) + [0.0] * (per - len(own))


def predict_gathered(
    model: CTRModel, encoder: InputEncoder, encoded: Sequence[Encoded], opts: FitOptions
) -> list[float]:
    """``predict_probs`` of ``encoded``, each rank predicting one contiguous part."""
    world, rank = distributed.world_size(), distributed.rank()
    per = -(-len(encoded) // world)
    part = list(encoded[rank * per : (rank + 1) * per])
    probs = predict_probs(model, encoder, part, batch_size=opts.eval_batch_size, device=opts.device)
    return [p for got in distributed.all_gather(probs) for p in got]


def _wrap(model: CTRModel, device: str) -> nn.Module:
    """DistributedDataParallel around ``model`` under torchrun (rank 0's weights to all)."""
    if distributed.world_size() <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.cuda.current_device()] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def steps_per_epoch(n_train: int, rate: float, batch_size: int, positives: int) -> int:
    expected = positives + (n_train - positives) * rate
    return max(1, math.ceil(expected / batch_size))


def fit(
    model: CTRModel,
    encoder: InputEncoder,
    train: Sequence[LoggedImpression],
    train_items: tuple[list[Instance], list[int]],
    test_encoded: Sequence[Encoded],
    test_labels: Sequence[int],
    opts: FitOptions,
    ckpt_dir: Path,
    resume: bool,
) -> tuple[checkpoint.Progress, list[float] | None]:
    """Train until ``opts.epochs`` or early stopping; the best weights end up in the model.
    Also returns the held-out predictions of the best epoch when this run computed them."""
    items, labels = train_items
    world, rank, main = distributed.world_size(), distributed.rank(), distributed.is_main()
    global_batch = opts.batch_size * world
    rate = model.config.negative_sampling_rate
    per_epoch = steps_per_epoch(len(items), rate, global_batch, sum(labels))
    optimizer, scheduler = make_optimizer(model, opts, per_epoch * opts.epochs)
    progress = checkpoint.Progress()
    best_probs: list[float] | None = None
    if resume and checkpoint.exists(ckpt_dir):
        progress = checkpoint.load(ckpt_dir, model, optimizer, scheduler)
        if main:
            log.info("resumed from %s at epoch %d", ckpt_dir, progress.epoch)
            print(f"resuming at epoch {progress.epoch}", flush=True)
    net = _wrap(model, opts.device)
    from tqdm import tqdm

    while progress.epoch < opts.epochs and progress.bad_epochs < opts.patience:
        epoch = progress.epoch
        # Sampling and order depend on (seed, epoch) only, so a resumed run replays exactly.
        kept, kept_labels = downsample_negatives(items, labels, rate, seed=opts.seed * 7919 + epoch)
        gen = torch.Generator().manual_seed(opts.seed * 1_000_003 + epoch)
        order = torch.randperm(len(kept), generator=gen).tolist()
        if world > 1:  # each rank its own dropout draws, replayed on a resume
            torch.manual_seed((opts.seed * 1_000_003 + epoch) * world + rank)
        losses: list[float] = []
        bar = tqdm(
            total=math.ceil(len(order) / global_batch),
            desc=f"epoch {epoch + 1}",
            unit="batch",
            disable=not (opts.progress and main),
            mininterval=5.0,
        )
        for batch, idx in length_bucketed(encoder, train, kept, order, global_batch, gen):
            weights: torch.Tensor | None = None
            scale = world / len(idx)
            if world > 1:
                own, w = rank_share(len(idx), world, rank)
                batch, idx = [batch[j] for j in own], [idx[j] for j in own]
                weights = torch.tensor(w, device=opts.device)
            y = torch.tensor([kept_labels[i] for i in idx], device=opts.device)
            inputs = encoder.tensors(batch, opts.device)
            loss = train_step(net, optimizer, scheduler, inputs, y, opts.device, weights, scale)
            losses.append(loss)
            bar.update(1)
            if len(losses) % 50 == 0:
                bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}")
        bar.close()
        if world > 1:  # a batch's loss is the sum of the ranks' shares
            losses = [sum(x) / world for x in zip(*distributed.all_gather(losses), strict=True)]
        probs = predict_gathered(model, encoder, test_encoded, opts)
        metrics = {
            "epoch": float(epoch + 1),
            "train_loss": sum(losses) / max(1, len(losses)),
            "test_logloss": logloss(test_labels, probs),
            "test_auc": auc(test_labels, probs),
        }
        progress.history.append(metrics)
        progress.epoch = epoch + 1
        if metrics["test_logloss"] < progress.best_metric:
            progress.best_metric = metrics["test_logloss"]
            progress.best_epoch = epoch + 1
            progress.bad_epochs = 0
            best_probs = probs
            if main:
                model.save(ckpt_dir / checkpoint.BEST_DIR)
        else:
            progress.bad_epochs += 1
        if not main:
            continue
        checkpoint.save(ckpt_dir, model, optimizer, scheduler, progress)
        log.info("epoch %d: %s", epoch + 1, metrics)
        print(
            f"epoch {epoch + 1}: " + " ".join(f"{k}={v:.5f}" for k, v in metrics.items()),
            flush=True,
        )
    best = ckpt_dir / checkpoint.BEST_DIR
    if main and (best / "model.safetensors").is_file():
        model.load_state_dict(CTRModel.load(best).state_dict())
    return progress, best_probs
