"""Invalid traffic: the one definition of which logged clicks and impressions are not counted.

Shared by the gateway (``/feedback`` records a click's verdict; ``/v1/stats`` skips invalid
clicks) and training (``logstore.joins.impressions_with_clicks``), so the canary analysis and
the models see the same traffic. Pure python, no I/O. Nothing is dropped silently: every
record stays in the log, and whoever skips one counts it by reason.

Rules, and where each is decided:

- ``too_fast`` (feedback time): the click came less than ``min_click_ms`` after the impression
  was made (its time is in the impression id). Off by default: clients and tests that click
  programmatically click within milliseconds; a human needs a few hundred.
- ``user_click_rate`` (feedback time, per replica): the user's clicks passed
  ``user_clicks_per_h`` in an hour (a token bucket). Applies only where a click names its user.
- ``all_positions`` (read time): every position of an impression with at least
  ``all_positions_n`` queries was clicked. Over all replicas' records, so it is decided when
  the logs are read.
- ``user_ctr`` (training, over the whole window read): a user with at least
  ``user_min_impressions`` impressions of which more than ``user_max_ctr`` were clicked.

A verdict taints the impression: an impression with any invalid click counts neither as an
impression nor as a click (a farm's impressions would otherwise dilute the arm it hit), and is
counted under the first reason found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

REASONS = ("too_fast", "user_click_rate", "all_positions", "user_ctr")


@dataclass(frozen=True)
class InvalidTrafficPolicy:
    """Thresholds of the rules above; 0 turns a rule off."""

    min_click_ms: int = 0
    """``too_fast`` below this many ms from impression to click."""
    all_positions_n: int = 3
    """``all_positions`` for impressions of at least this many queries."""
    user_clicks_per_h: int = 300
    """``user_click_rate`` past this many clicks by one user in an hour."""
    user_min_impressions: int = 50
    """``user_ctr`` only for users with at least this many impressions in the window."""
    user_max_ctr: float = 0.6
    """``user_ctr`` above this share of clicked impressions (1.0: off)."""

    def __post_init__(self) -> None:
        for name in ("min_click_ms", "all_positions_n", "user_clicks_per_h"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} (accepted: >= 0; 0 = off)")
        if self.user_min_impressions < 1:
            raise ValueError(f"user_min_impressions={self.user_min_impressions} (accepted: >= 1)")
        if not 0.0 < self.user_max_ctr <= 1.0:
            raise ValueError(f"user_max_ctr={self.user_max_ctr} (accepted: 0 < x <= 1; 1 = off)")


def click_verdict(delay_ms: float, policy: InvalidTrafficPolicy) -> str | None:
    """Feedback time: why a click ``delay_ms`` after its impression is invalid, or None."""
    if policy.min_click_ms and delay_ms < policy.min_click_ms:
        return "too_fast"
    return None


def clicks_all_positions(positions: Iterable[int], n: int, policy: InvalidTrafficPolicy) -> bool:
    """Whether ``positions`` cover every one of ``n`` shown queries under the rule."""
    return (
        bool(policy.all_positions_n)
        and n >= policy.all_positions_n
        and set(range(n)) <= set(positions)
    )


def impression_verdict(
    clicks: Mapping[int, str | None], n: int, policy: InvalidTrafficPolicy
) -> str | None:
    """Read time: why the clicked impression (``clicks``: position -> the verdict recorded on
    its click) is invalid traffic, or None. ``n``: how many queries it showed."""
    for reason in clicks.values():
        if reason:
            return reason
    return "all_positions" if clicks_all_positions(clicks, n, policy) else None


@dataclass
class UserTally:
    """Impressions and clicked impressions per user over a window (the ``user_ctr`` rule)."""

    counts: dict[str, list[int]] = field(default_factory=dict)

    def add(self, user: str, clicked: bool) -> None:
        if not user:
            return  # anonymous: no key to hold the rule against
        entry = self.counts.setdefault(user, [0, 0])
        entry[0] += 1
        entry[1] += int(clicked)

    def flagged(self, policy: InvalidTrafficPolicy) -> set[str]:
        """Users whose clicked share is over the ceiling, with enough impressions to say so."""
        if policy.user_max_ctr >= 1.0:
            return set()
        return {
            user
            for user, (imps, clicked) in self.counts.items()
            if imps >= policy.user_min_impressions and clicked > policy.user_max_ctr * imps
        }
