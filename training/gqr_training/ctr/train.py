"""``ctr-train``: train the CTR predictor on a day window of impression/click logs and write a
versioned artifact; the Kubernetes Job's entrypoint. The last stdout line is a JobResult JSON.

    ctr-train --logs /data/logs --out /artifacts/ctr --window-days 14 \\
        --backbone bert --variant ctx --epochs 3 --device cuda --version 20250101-0300 --resume
    ctr-train --logs s3://bucket/logs --out s3://bucket/artifacts/ctr --version r7 ...

The held-out day (evaluation every epoch, early stopping, final metrics) is the last 24 hours
of the window. The artifact is built in a local work folder and published whole as
``<out>/<version>`` (gqr_training.output; any URI form). ``--resume`` continues from the
checkpoint: ``<out>/.checkpoints/<version>`` for a store on a disk, ``<work>/checkpoints``
otherwise.

Under ``torchrun --nproc-per-node N`` the N processes train one model with DDP
(``gqr_training.ctr.loop``; ``--batch-size`` is per process): rank 0 builds the tokenizer, writes
checkpoints and the artifact and prints the JobResult; the others wait for it at the end.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gqr_serving.storage import ArtifactStore
from gqr_training import distributed
from gqr_training.cliconfig import ConfigParser, as_flags
from gqr_training.ctr.train_config import CTRTrainConfig
from gqr_training.output import input_dir, published_path, work_folder
from gqr_training.window import resolve_window

if TYPE_CHECKING:
    from gqr_training.ctr.data import WindowData
    from gqr_training.ctr.users import UserPropensity

log = logging.getLogger("gqr_training.ctr")


def make_parser() -> ConfigParser[CTRTrainConfig]:
    return ConfigParser(CTRTrainConfig, prog="ctr-train", description=__doc__.split("\n\n")[0])


@dataclass
class TrainOutcome:
    artifact: Path
    """A local folder holding the published artifact."""
    version: str
    metrics: dict[str, float]
    test_labels: list[int]
    test_probs: list[float]
    uri: str
    """Where the artifact was published: ``<out>/<version>`` (any URI form)."""


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def read_data(cfg: CTRTrainConfig) -> WindowData:
    """The window of ``cfg`` read from the log store and split (training / held-out day)."""
    from gqr_training.ctr.data import load_window

    start, end = resolve_window(cfg, cfg.logs)
    data = load_window(cfg.logs, start, end, cfg.max_positions, cfg.max_train_impressions)
    if not data.train or not data.test:
        raise ValueError(
            f"window {start:%Y-%m-%d}..{end:%Y-%m-%d} of {cfg.logs}: {len(data.train)} training "
            f"and {len(data.test)} held-out impressions; need both (check --end/--window-days)"
        )
    data.test.sort(key=lambda i: i.ts)
    return data


def build_model(cfg: CTRTrainConfig, data: WindowData, ckpt: Path, resuming: bool) -> Any:
    """``(tokenizer, config, model)``: from the checkpoint when resuming, else new (a
    WordPiece tokenizer trained on the window, or the ``--pretrained`` encoder's), saved to the
    checkpoint before the first epoch."""
    from gqr_training.ctr import checkpoint
    from gqr_training.ctr.data import all_texts
    from gqr_training.ctr.model import CTRConfig, CTRModel
    from gqr_training.ctr.tokenization import load_tokenizer, train_wordpiece

    if resuming:
        config = CTRConfig.load(ckpt)
        return load_tokenizer(ckpt / checkpoint.TOKENIZER_DIR), config, CTRModel(config)
    # A pretrained encoder from any URI form (a folder, pvc://, s3://, gs://, hf://).
    pretrained = input_dir(cfg.pretrained, require=("config.json",)) if cfg.pretrained else None
    if pretrained:
        tokenizer = load_tokenizer(pretrained)
    else:
        tokenizer = train_wordpiece(all_texts(data.train), cfg.vocab_size)
    config = cfg.model_config()
    if pretrained:
        model = CTRModel.from_pretrained(config, pretrained)
    else:
        config.backbone_config = cfg.backbone_config(len(tokenizer), int(tokenizer.pad_token_id))
        model = CTRModel(config)
    ckpt.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(ckpt / checkpoint.TOKENIZER_DIR))
    config.save(ckpt)
    return tokenizer, config, model


def fit_user_propensity(
    cfg: CTRTrainConfig, model: Any, encoder: Any, data: WindowData, train: Any
) -> UserPropensity:
    """Per-user click multipliers on the training window's predictions (``--user-prior``, or
    the best prior on the window's last day)."""
    from gqr_training.ctr.batches import predict_probs
    from gqr_training.ctr.users import fit, select_prior

    items, labels = train
    probs = predict_probs(
        model, encoder, encoder.encode_instances(data.train, items), device=cfg.device
    )
    keys = [data.train[i].user_key for i, _ in items]
    prior = cfg.user_prior
    if prior is None:
        days = [data.train[i].day for i, _ in items]
        prior, _losses = select_prior(keys, labels, probs, days)
    return fit(keys, labels, probs, prior=prior)


def shared_model(
    cfg: CTRTrainConfig, data: WindowData, ckpt: Path, resume: bool
) -> tuple[Any, bool]:
    """``build_model`` on every rank, ``resuming`` decided by rank 0: it builds first (a
    tokenizer trained on the window, saved to the checkpoint), the others then load that
    tokenizer and config (their weights come from rank 0 when DDP wraps the model)."""
    from gqr_training.ctr import checkpoint

    resuming = distributed.broadcast(resume and checkpoint.exists(ckpt))
    if distributed.is_main():
        built = build_model(cfg, data, ckpt, resuming)
    distributed.barrier()
    if not distributed.is_main():
        built = build_model(cfg, data, ckpt, True)
    return built, resuming


def run(cfg: CTRTrainConfig, data: WindowData | None = None) -> TrainOutcome | None:
    """Train and write the artifact; ``data`` lets a caller read the logs once for many runs.
    Under torchrun, ranks other than 0 train and return None (rank 0 writes)."""
    import torch

    from gqr_training.ctr import artifact
    from gqr_training.ctr.batches import InputEncoder, predict_probs
    from gqr_training.ctr.data import all_texts, instances
    from gqr_training.ctr.evaluate import evaluate, time_slices
    from gqr_training.ctr.loop import fit

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    version = distributed.broadcast(cfg.version or datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    store = ArtifactStore.at(str(cfg.out))
    # rank 0's folders: the others read the tokenizer it writes to the checkpoint
    work = distributed.broadcast(
        work_folder(store, version, cfg.work_dir) if distributed.is_main() else None
    )
    ckpt = cfg.checkpoint_dir or (
        Path(store.base) / ".checkpoints" / version if store.local else work / "checkpoints"
    )
    data = data or read_data(cfg)
    (tokenizer, config, model), resuming = shared_model(cfg, data, ckpt, cfg.resume)
    model.to(cfg.device)
    encoder = InputEncoder(tokenizer, config)
    encoder.tokens.warm(all_texts(data.train))
    encoder.tokens.warm(all_texts(data.test))
    train_instances = instances(data.train)
    test_items, test_labels = instances(data.test)
    test_encoded = encoder.encode_instances(data.test, test_items)
    progress, probs = fit(
        model,
        encoder,
        data.train,
        train_instances,
        test_encoded,
        test_labels,
        cfg.fit_options(),
        ckpt,
        resume=resuming,
    )
    if not distributed.is_main():
        return None
    if probs is None:  # the best epoch was before a resume
        probs = predict_probs(model, encoder, test_encoded, device=cfg.device)
    groups = time_slices(len(test_labels), 4)
    metrics = evaluate(test_labels, probs, groups)
    users = None
    if cfg.user_propensity:
        users = fit_user_propensity(cfg, model, encoder, data, train_instances)
        probs = [
            users.apply([p], data.test[i].user_key)[0]
            for (i, _), p in zip(test_items, probs, strict=True)
        ]
        text_only, metrics = metrics, evaluate(test_labels, probs, groups)
        metrics.update(
            auc_text_only=text_only["auc"],
            logloss_text_only=text_only["logloss"],
            users=float(len(users.factors)),
            user_prior=users.prior,
        )
    metrics.update(
        epochs_run=float(progress.epoch),
        best_epoch=float(progress.best_epoch),
        train_impressions=float(len(data.train)),
        test_impressions=float(len(data.test)),
    )
    training = {
        "window_start": data.start.isoformat(),
        "window_end": data.end.isoformat(),
        "held_out_day": data.held_out_day.isoformat(),
        "logs": str(cfg.logs),
        "stats": data.stats,
        "history": progress.history,
        "args": as_flags(cfg),
    }
    built = artifact.write(
        work, "artifact", model.cpu(), tokenizer, metrics, training, (test_labels, probs), users
    )
    uri = store.publish(built, version, make_current=False, move=True)
    shutil.rmtree(ckpt, ignore_errors=True)
    local = published_path(store, version, built, work)
    return TrainOutcome(local, version, metrics, test_labels, probs, uri)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in metrics.items() if v == v and abs(v) != float("inf")}


def main(argv: list[str] | None = None) -> int:
    from gqr_training.jobresult import report

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = make_parser().parse_config(argv)

    def body() -> dict[str, Any]:
        outcome = distributed.joined(cfg.device, lambda: run(cfg))
        if outcome is None:  # a rank other than 0: rank 0 reports
            return {}
        return {
            "version": outcome.version,
            "artifact_uri": outcome.uri,
            "metrics": _finite(outcome.metrics),
        }

    return report("ctr-train", body, cfg.result_file)


if __name__ == "__main__":
    raise SystemExit(main())
