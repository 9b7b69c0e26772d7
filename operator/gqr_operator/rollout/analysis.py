"""Canary analysis: is the canary's CTR worse than stable's by more than the allowed margin?

Test: mSPRT, the mixture sequential probability ratio test of Johari, Pekelis & Walsh,
"Always Valid Inference" (2017/2022), in its normal approximation for two proportions
(as in Optimizely's Stats Engine). Why: the analysis timer re-evaluates every few seconds
while counts grow. A fixed-horizon z-test checked at every peek stops at the first lucky
fluctuation and its false-positive rate grows with the number of peeks (20 peeks at
alpha=0.05 give ~20-25%). The mSPRT statistic is a martingale under H0, so by Ville's
inequality P(ever crossing 1/alpha) <= alpha however often we look, and it needs no fixed
horizon (the rollout may run for hours or days). `minImpressions` is a guard on top:
below it the normal approximation is poor and the answer is always `wait`, never `pass`.

Hypothesis at margin m = maxRelativeDrop, contrast theta_k = ctr_c - k * ctr_s, k = 1 - m:
estimate d = p_c - k p_s, variance V = v_c + k^2 v_s (v = p(1-p)/n, p Laplace-smoothed so
that zero clicks never give V = 0), normal mixing distribution N(0, tau^2) on theta_k:

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

always-valid p-value = min(1, 1/Lambda); significant when Lambda >= 1/alpha.
`pass`: significant and d > 0 (the canary's CTR is above (1-m) x stable's, i.e. the lower
bound of the relative lift is above -m). `fail`: significant and d < 0 (upper bound below -m).
The reported confidence sequence for the relative lift r = ctr_c/ctr_s - 1 is every r whose
contrast (k = 1 + r) is not significant, found by bisection.

tau (`tau_relative`, default 0.1): the mixing standard deviation as a fraction of the pooled
CTR, i.e. the size of relative lifts we expect. Smaller detects small lifts sooner and large
ones later; the false-positive guarantee holds for any fixed value.

Counts: the caller passes counts since the current rollout step started (the gateway's
`/v1/stats?since=`), so each step is one experiment at one traffic split (no Simpson's paradox
across splits) and `minImpressions` means "new impressions at this weight".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["wait", "pass", "fail"]
_BISECT_STEPS = 60
_MAX_RATIO = 1e6


@dataclass(frozen=True)
class ArmCounts:
    """Impressions and clicks of one arm (clamped: 0 <= clicks <= impressions)."""

    impressions: int
    """Impressions shown by this arm."""
    clicks: int
    """Impressions of this arm with at least one click."""

    def __post_init__(self) -> None:
        # Counters come from a gateway over HTTP; a race between two counters must not crash us.
        n = max(0, int(self.impressions))
        object.__setattr__(self, "impressions", n)
        object.__setattr__(self, "clicks", min(max(0, int(self.clicks)), n))

    @property
    def ctr(self) -> float:
        """Clicks per impression (0 with no impressions)."""
        return self.clicks / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class AnalysisConfig:
    """How the canary's CTR is compared against stable's."""

    confidence: float = 0.95
    """1 - alpha of the always-valid test and confidence sequence."""
    max_relative_drop: float = 0.0
    """m: the canary may be at most this fraction worse than stable (0.02 = 2% worse)."""
    min_impressions: int = 10000
    """Per arm; below it the decision is always `wait`."""
    tau_relative: float = 0.1
    """Mixing std of the mSPRT as a fraction of the pooled CTR (expected relative lift)."""

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence={self.confidence} (accepted: 0.5 <= c < 1)")
        if not 0.0 <= self.max_relative_drop < 1.0:
            raise ValueError(f"max_relative_drop={self.max_relative_drop} (accepted: 0-<1)")
        if self.min_impressions < 0:
            raise ValueError(f"min_impressions={self.min_impressions} (accepted: >= 0)")
        if self.tau_relative <= 0.0:
            raise ValueError(f"tau_relative={self.tau_relative} (accepted: > 0)")


@dataclass(frozen=True)
class AnalysisResult:
    """One evaluation of the canary."""

    decision: Verdict
    """`wait`, `pass` or `fail`."""
    reason: str
    """One human line with the numbers."""
    stable: ArmCounts
    """Counts the decision used."""
    canary: ArmCounts
    """Counts the decision used."""
    relative_lift: float | None
    """ctr_c / ctr_s - 1; None while stable has no clicks."""
    p_value: float
    """Always-valid p-value of H0: relative lift == -max_relative_drop."""
    lift_lower: float | None
    """Lower end of the confidence sequence for the relative lift (None: unknown)."""
    lift_upper: float | None
    """Upper end (None: unbounded or unknown)."""

    def to_status(self) -> dict[str, Any]:
        """JSON-ready form for status history (no inf/nan: the apiserver refuses them)."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 6)

        return {
            "decision": self.decision,
            "reason": self.reason,
            "stable": {"impressions": self.stable.impressions, "clicks": self.stable.clicks},
            "canary": {"impressions": self.canary.impressions, "clicks": self.canary.clicks},
            "stableCtr": r(self.stable.ctr),
            "canaryCtr": r(self.canary.ctr),
            "relativeLift": r(self.relative_lift),
            "pValue": float(f"{self.p_value:.4g}"),
            "liftLower": r(self.lift_lower),
            "liftUpper": r(self.lift_upper),
        }


def _var(a: ArmCounts) -> float:
    p = (a.clicks + 1) / (a.impressions + 2)
    return p * (1 - p) / max(a.impressions, 1)


def log_lambda(stable: ArmCounts, canary: ArmCounts, k: float, tau2: float) -> float:
    """log of the mixture likelihood ratio against H0: ctr_c == k * ctr_s."""
    d = canary.ctr - k * stable.ctr
    v = _var(canary) + k * k * _var(stable)
    return 0.5 * math.log(v / (v + tau2)) + tau2 * d * d / (2 * v * (v + tau2))


def _tau2(stable: ArmCounts, canary: ArmCounts, cfg: AnalysisConfig) -> float:
    pooled = (stable.clicks + canary.clicks + 1) / (stable.impressions + canary.impressions + 2)
    return (cfg.tau_relative * pooled) ** 2


def _boundary(inside: float, outside: float, significant: Callable[[float], bool]) -> float:
    """Bisection between a ratio inside the confidence set and one outside it."""
    for _ in range(_BISECT_STEPS):
        mid = (inside + outside) / 2
        if significant(mid):
            outside = mid
        else:
            inside = mid
    return inside


def _interval(
    stable: ArmCounts, canary: ArmCounts, tau2: float, threshold: float
) -> tuple[float | None, float | None]:
    if stable.clicks == 0:
        return None, None
    k_hat = canary.ctr / stable.ctr

    def significant(k: float) -> bool:
        return log_lambda(stable, canary, k, tau2) >= threshold

    lower = 0.0 if not significant(0.0) else _boundary(k_hat, 0.0, significant)
    hi = max(2 * k_hat, 2.0)
    while not significant(hi) and hi < _MAX_RATIO:
        hi *= 2
    upper = None if not significant(hi) else _boundary(k_hat, hi, significant) - 1
    return lower - 1, upper


def analyse(stable: ArmCounts, canary: ArmCounts, cfg: AnalysisConfig) -> AnalysisResult:
    """Decide wait / pass / fail from counts since the current step started."""
    threshold = math.log(1 / (1 - cfg.confidence))
    tau2 = _tau2(stable, canary, cfg)
    k0 = 1 - cfg.max_relative_drop
    ll = log_lambda(stable, canary, k0, tau2)
    p_value = min(1.0, math.exp(-ll)) if ll > -700 else 1.0
    lift = canary.ctr / stable.ctr - 1 if stable.clicks else None
    lower, upper = _interval(stable, canary, tau2, threshold)
    ctrs = f"CTR canary {canary.ctr:.4%} vs stable {stable.ctr:.4%}"
    need = max(cfg.min_impressions, 1)
    decision: Verdict
    if min(stable.impressions, canary.impressions) < need:
        decision = "wait"
        reason = (
            f"collecting: {canary.impressions}/{need} canary and {stable.impressions}/{need} "
            f"stable impressions ({ctrs})"
        )
    else:
        margin = f"allowed drop {cfg.max_relative_drop:.1%}, p={p_value:.3g}"
        diff = canary.ctr - k0 * stable.ctr
        if ll >= threshold and diff > 0:
            decision, reason = "pass", f"canary not worse: {ctrs}; {margin}"
        elif ll >= threshold and diff < 0:
            decision, reason = "fail", f"canary worse: {ctrs}; {margin}"
        else:
            decision, reason = "wait", f"inconclusive: {ctrs}; {margin}"
    return AnalysisResult(decision, reason, stable, canary, lift, p_value, lower, upper)
