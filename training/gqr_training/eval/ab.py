"""The demo's simulated A/B test: requests split 50/50 by user, each arm's lists shown to the
simulated users, empirical CTR per arm (clicked impressions / impressions) and the lift of the
second arm over the first with 95% normal confidence intervals."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

Arm = Callable[[Sequence[Any]], list[list[str]]]
"""An arm: the lists a policy serves for a batch of requests."""


def split_by_user(requests: Sequence[Any], names: Sequence[str], seed: int) -> dict[str, list[Any]]:
    """Each user's requests all go to one arm (a hash of the user key)."""
    split: dict[str, list[Any]] = {n: [] for n in names}
    for r in requests:
        bucket = hashlib.sha256(f"{seed}:{r.user_key}".encode()).digest()[0] % 2
        split[names[bucket if len(names) == 2 else 0]].append(r)
    return split


def lift(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Arm ``b``'s empirical CTR over arm ``a``'s: absolute (normal CI) and relative (delta
    method CI on the ratio)."""
    diff = b["ctr"] - a["ctr"]
    se = math.sqrt(
        a["ctr"] * (1 - a["ctr"]) / max(1, a["impressions"])
        + b["ctr"] * (1 - b["ctr"]) / max(1, b["impressions"])
    )
    rel = diff / a["ctr"] if a["ctr"] else float("nan")
    se_rel = (
        (b["ctr"] / a["ctr"])
        * math.sqrt((1 - a["ctr"]) / max(1, a["clicked"]) + (1 - b["ctr"]) / max(1, b["clicked"]))
        if a["clicked"] and b["clicked"]
        else float("nan")
    )
    return {
        "absolute": diff,
        "absolute_ci95": [diff - 1.96 * se, diff + 1.96 * se],
        "relative": rel,
        "relative_ci95": [rel - 1.96 * se_rel, rel + 1.96 * se_rel],
        "ci_excludes_zero": diff - 1.96 * se > 0 or diff + 1.96 * se < 0,
    }


def ab_test(
    world: Any, requests: Sequence[Any], arms: dict[str, Arm], seed: int = 0
) -> dict[str, Any]:
    """Per arm: impressions, clicked, empirical and true CTR; ``lift``: the second arm's over
    the first's."""
    rng = random.Random(f"ab:{seed}")
    names = list(arms)
    out: dict[str, Any] = {}
    for name, reqs in split_by_user(requests, names, seed).items():
        lists = arms[name](reqs)
        shown = list(zip(reqs, lists, strict=True))
        clicked = [bool(world.show(r, q, rng)) if q else False for r, q in shown]
        true = [world.true_list_ctr(r, q) if q else 0.0 for r, q in shown]
        out[name] = {
            "impressions": len(reqs),
            "clicked": sum(clicked),
            "ctr": sum(clicked) / max(1, len(reqs)),
            "true_ctr": sum(true) / max(1, len(reqs)),
        }
    a, b = (out[n] for n in names)
    out["lift"] = lift(a, b)
    return out
