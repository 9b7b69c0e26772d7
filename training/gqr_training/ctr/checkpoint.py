"""Per-epoch training checkpoints that survive a kill: model, optimizer, scheduler, epoch,
RNG states and the best metric, written atomically so a resumed run continues exactly."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "state.pt"
BEST_DIR = "best"
TOKENIZER_DIR = "tokenizer"


@dataclass
class Progress:
    """Where training stands after a completed epoch."""

    epoch: int = 0
    """Epochs completed."""
    best_metric: float = float("inf")
    """Best held-out logloss so far."""
    best_epoch: int = 0
    bad_epochs: int = 0
    """Epochs since the best one (early stopping patience)."""
    history: list[dict[str, float]] = field(default_factory=list)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    progress: Progress,
) -> Path:
    """Write ``state.pt`` via a temporary file and an atomic rename."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "progress": {
            "epoch": progress.epoch,
            "best_metric": progress.best_metric,
            "best_epoch": progress.best_epoch,
            "bad_epochs": progress.bad_epochs,
            "history": progress.history,
        },
        "rng": rng_state(),
    }
    tmp = directory / f".{STATE_FILE}.tmp"
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, directory / STATE_FILE)
    return directory / STATE_FILE


def load(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> Progress:
    """Restore everything ``save`` wrote; returns the progress to continue from."""
    state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return Progress(**state["progress"])


def exists(directory: Path) -> bool:
    return (directory / STATE_FILE).is_file()
