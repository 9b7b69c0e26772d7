"""A tiny synthetic click log for CTR tests: position bias, good/bad aspects, redundancy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from testsupport.records import impression

from gqr_serving.logstore import LogWriter
from gqr_serving.records import ClickRecord, ImpressionRecord

TOPICS = ["paris", "tokyo", "python", "guitar", "pizza", "tesla", "yoga", "bitcoin"]
ASPECTS = {"price": 0.6, "history": 0.3, "tips": 0.5, "reviews": 0.45, "weather": 0.1}
START = datetime(2025, 3, 1, tzinfo=UTC)


def true_probs(user: str, queries: list[str]) -> list[float]:
    seen: set[str] = set()
    out = []
    for k, q in enumerate(queries):
        topic, aspect = q.split()[:2]
        attr = ASPECTS[aspect] * (1.0 if topic in user else 0.2)
        if aspect in seen:
            attr *= 0.2
        seen.add(aspect)
        out.append(attr * (k + 1) ** -1.0)
    return out


def write_logs(
    root: Path,
    days: int = 3,
    per_day: int = 300,
    seed: int = 0,
    propensity: dict[str, float] | None = None,
) -> datetime:
    """Write ``days`` days from START; returns the window end (exclusive). ``propensity``
    multiplies the click probabilities of the named user keys (``u0`` .. ``u49``)."""
    rng = random.Random(seed)
    with LogWriter(root, writer_id="ctr-test", fsync_interval_s=0.0) as writer:
        for d in range(days):
            records: list[ImpressionRecord | ClickRecord] = []
            for i in range(per_day):
                ts = START + timedelta(days=d, seconds=i * 60)
                topic = rng.choice(TOPICS)
                user = f"{topic} {rng.choice(list(ASPECTS))}"
                queries = [
                    f"{rng.choice([topic, *TOPICS])} {rng.choice(list(ASPECTS))}" for _ in range(3)
                ]
                iid = f"t{d}-{i}"
                records.append(
                    impression(
                        iid,
                        ts,
                        user,
                        queries,
                        session_id=f"s{d}-{i}",
                        user_key=f"u{i % 50}",
                        model_version="test",
                    )
                )
                factor = (propensity or {}).get(f"u{i % 50}", 1.0)
                for k, p in enumerate(true_probs(user, queries)):
                    if rng.random() < min(0.95, p * factor):
                        records.append(
                            ClickRecord(impression_id=iid, position=k, ts=ts + timedelta(seconds=5))
                        )
            writer.write_many(records)
    return START + timedelta(days=days)


TINY = [
    "--layers",
    "1",
    "--hidden",
    "32",
    "--heads",
    "2",
    "--intermediate",
    "64",
    "--embedding-size",
    "16",
    "--vocab-size",
    "200",
    "--max-positions",
    "4",
    "--max-length",
    "48",
    "--batch-size",
    "64",
    "--lr",
    "3e-3",
    "--threads",
    "1",
    "--no-progress",
]


def logs_and_train_argv(
    tmp: Path,
    days: int,
    per_day: int,
    *extra: str,
    seed: int = 0,
    propensity: dict[str, float] | None = None,
) -> list[str]:
    """Write ``days`` days of logs to ``tmp/logs`` (``write_logs``); return the ctr-train
    arguments for a tiny model on all of them, its artifacts under ``tmp/art``."""
    end = write_logs(tmp / "logs", days=days, per_day=per_day, seed=seed, propensity=propensity)
    return [
        "--logs",
        str(tmp / "logs"),
        "--out",
        str(tmp / "art"),
        "--end",
        end.isoformat(),
        "--window-days",
        str(days),
        *TINY,
        *extra,
    ]


def train_tiny_artifact(tmp: Path, variant: str = "ctx", backbone: str = "bert") -> Path:
    """Write logs and train a tiny artifact in-process; returns the artifact directory."""
    from gqr_training.ctr.train import main

    argv = logs_and_train_argv(
        tmp,
        3,
        300,
        "--epochs",
        "2",
        "--variant",
        variant,
        "--backbone",
        backbone,
        "--version",
        "tiny",
    )
    assert main(argv) == 0
    return tmp / "art" / "tiny"
