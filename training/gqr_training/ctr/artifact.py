"""The versioned CTR artifact directory: what training writes and what the scorer loads.

    <root>/<version>/
        model.safetensors   weights (encoder + domain embedding + head)
        ctr_config.json     backbone + its config, variant, max positions/length, sampling rate
        tokenizer/          the tokenizer (save_pretrained format)
        training.json       window, held-out day, data stats, per-epoch history, arguments
        metrics.json        held-out metrics (auc, logloss, diff_ctr, ece, ...)
        user_propensity.json  per-user click multipliers (users.py; absent when turned off)
        reliability.png     reliability diagram on the held-out day

Written to a temporary sibling and renamed, so a reader never sees half an artifact.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gqr_training.ctr.model import CTRModel
from gqr_training.ctr.users import UserPropensity

TOKENIZER_DIR = "tokenizer"
METRICS_FILE = "metrics.json"
TRAINING_FILE = "training.json"
PLOT_FILE = "reliability.png"


def write(
    root: Path,
    version: str,
    model: CTRModel,
    tokenizer: Any,
    metrics: dict[str, float],
    training: dict[str, Any],
    held_out: tuple[Sequence[int], Sequence[float]] | None = None,
    users: UserPropensity | None = None,
) -> Path:
    from gqr_training.ctr.evaluate import plot_reliability

    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    tmp = root / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp)
    tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
    (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    (tmp / TRAINING_FILE).write_text(json.dumps(training, indent=2, default=str) + "\n")
    if users is not None:
        users.save(tmp)
    if held_out is not None:
        plot_reliability({"model": held_out}, tmp / PLOT_FILE)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final
