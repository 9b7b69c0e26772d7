"""dpo-iterate's prompts from the log store: the requests users really made in a day window.

Each distinct (normalised) user query of the window becomes one ``PromptRequest`` with the side
information it was served with (history, AI answer, co-occurring queries); ``--cor`` refreshes
the co-occurring queries from a newer COR artifact. The test set is fixed by a hash of the
normalised query, so it stays the same across iterations and across runs over shifted windows,
and it never overlaps the training prompts.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gqr_serving.prompt import PromptRequest, SideInfo

TEST_BUCKETS = 10
"""One query in TEST_BUCKETS (by hash) is a test query."""


@dataclass(frozen=True)
class LogPrompts:
    train: list[PromptRequest]
    test: list[PromptRequest]
    impressions: int
    """Impressions of the task read in the window."""


def is_test_query(normalised: str) -> bool:
    digest = hashlib.blake2b(normalised.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % TEST_BUCKETS == 0


def with_cooccurring(side: SideInfo, queries: list[str]) -> SideInfo:
    """The logged side information with its co-occurring queries replaced (validated again)."""
    return SideInfo(**{**side.model_dump(), "cooccurring": queries})


def prompts_from_logs(
    logs: str,
    start: datetime,
    end: datetime,
    task: str,
    *,
    max_train: int = 2000,
    max_test: int = 256,
    cor_root: str | Path | None = None,
    cor_k: int = 5,
    seed: int = 0,
) -> LogPrompts:
    """Training and test prompts from the impressions of ``task`` in ``[start, end)``."""
    from gqr_serving.cor.artifact import load_artifact
    from gqr_serving.cor.normalize import normalize_query
    from gqr_serving.logstore import LogReader

    successors = load_artifact(cor_root).successors if cor_root else None
    first: dict[str, PromptRequest] = {}
    seen: set[str] = set()  # impression ids: a record written twice (a spool replay) counts once
    for imp in LogReader(logs).read("impression", start, end):
        if imp.task != task or imp.impression_id in seen:
            continue
        seen.add(imp.impression_id)
        key = normalize_query(imp.query)
        if not key or key in first:
            continue
        side = imp.side_info
        if successors is not None:
            side = with_cooccurring(side, [q for q, _ in successors.get(key, ())[:cor_k]])
        first[key] = PromptRequest(task=task, query=imp.query, side_info=side)
    if not first:
        raise ValueError(
            f"--logs {logs}: no {task!r} impressions between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M} UTC (widen --window-days or check --end)"
        )
    keys = sorted(first)
    test_keys = [k for k in keys if is_test_query(k)]
    train_keys = [k for k in keys if not is_test_query(k)]
    if not test_keys or not train_keys:
        raise ValueError(
            f"--logs {logs}: {len(keys)} distinct queries in the window are too few to split "
            f"into training and test prompts (need several dozen)"
        )
    rng = random.Random(seed)
    rng.shuffle(train_keys)
    random.Random(0).shuffle(test_keys)  # the fixed test set does not depend on --seed
    return LogPrompts(
        train=[first[k] for k in train_keys[:max_train]],
        test=[first[k] for k in test_keys[:max_test]],
        impressions=len(seen),
    )
