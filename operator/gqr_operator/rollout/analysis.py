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

Test `horizon` (`AnalysisConfig.test`, `spec.rollout.analysis.test`): a group-sequential test
for a step with a known end, `maxImpressions` per arm (`horizon`). Continuous monitoring up to
a known horizon can spend alpha far more efficiently than an always-valid test that must hold
forever: O'Brien-Fleming's constant boundary on the B-value B(t) = Z(t) sqrt(t), where
Z = d / sqrt(V) is the usual z statistic of the contrast above and t = min(n_s, n_c) / horizon
the information fraction (at a steady split V shrinks as 1/min(n), so the step ends at t = 1).
Under H0, B is a Brownian motion in t, and by the reflection principle
P(sup_{t<=1} |B(t)| >= c) <= 4 (1 - Phi(c)); so c = Phi^-1(1 - alpha/4) (1.96 at confidence 0.9)
keeps the false-decision rate under alpha however often the operator looks. Early looks need a
large |Z| (c / sqrt(t): 3.9 at a quarter of the horizon), the last one |Z| >= c, against ~2.8
for the mSPRT at its best tau: a true lift is decided with ~half the impressions. p-value:
min(1, 4 (1 - Phi(|Z| sqrt(t)))), the smallest alpha whose boundary this look crosses; the
confidence interval for the lift is every r whose contrast does not cross. A look past the
horizon (the tick that sees both arms over maxImpressions) is judged at t = 1; its overshoot
t' > 1 can raise alpha to at most 4 (1 - Phi(c / sqrt(t'))) (0.102 for 1% overshoot at 0.9).
It needs `maxImpressions` on every compared step (the spec refuses it otherwise).

Counts: the caller passes counts since the current rollout step started (the gateway's
`/v1/stats?since=`), so each step is one experiment at one traffic split (no Simpson's paradox
across splits) and `minImpressions` means "new impressions at this weight".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

Verdict = Literal["wait", "pass", "fail"]
Test = Literal["msprt", "horizon"]
_NORMAL = NormalDist()
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
    test: Test = "msprt"
    """`msprt` (always valid, no end) or `horizon` (group-sequential up to `horizon`)."""
    horizon: int = 0
    """Per arm: the step's maxImpressions, where the `horizon` test's information is 1. 0 (a
    step without an end, which the spec refuses with `horizon`): the msprt is used."""

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence={self.confidence} (accepted: 0.5 <= c < 1)")
        if not 0.0 <= self.max_relative_drop < 1.0:
            raise ValueError(f"max_relative_drop={self.max_relative_drop} (accepted: 0-<1)")
        if self.min_impressions < 0:
            raise ValueError(f"min_impressions={self.min_impressions} (accepted: >= 0)")
        if self.tau_relative <= 0.0:
            raise ValueError(f"tau_relative={self.tau_relative} (accepted: > 0)")
        if self.test not in ("msprt", "horizon"):
            raise ValueError(f"test={self.test!r} (accepted: msprt, horizon)")
        if self.horizon < 0:
            raise ValueError(f"horizon={self.horizon} (accepted: >= 0; 0 = no end)")

    @property
    def horizon_test(self) -> bool:
        """The horizon test applies: chosen, and the step has an end (else: msprt)."""
        return self.test == "horizon" and self.horizon > 0


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
    """Always-valid (msprt) or horizon-adjusted (horizon) p-value of H0: relative lift ==
    -max_relative_drop."""
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


def _z(stable: ArmCounts, canary: ArmCounts, k: float) -> float:
    """z statistic of the contrast ctr_c - k ctr_s (variances Laplace-smoothed as above)."""
    return (canary.ctr - k * stable.ctr) / math.sqrt(_var(canary) + k * k * _var(stable))


def information(stable: ArmCounts, canary: ArmCounts, horizon: int) -> float:
    """The horizon test's information fraction t = min(n_s, n_c) / horizon, at most 1."""
    return min(1.0, min(stable.impressions, canary.impressions) / max(horizon, 1))


def _evidence(
    stable: ArmCounts, canary: ArmCounts, cfg: AnalysisConfig
) -> tuple[Callable[[float], float], float]:
    """The test's evidence against H0: ctr_c == k ctr_s as a function of k, and the threshold
    it must reach. msprt: log Lambda vs log(1/alpha). horizon: |B| = |Z| sqrt(t) vs c."""
    alpha = 1 - cfg.confidence
    if cfg.horizon_test:
        root_t = math.sqrt(information(stable, canary, cfg.horizon))
        return (
            lambda k: abs(_z(stable, canary, k)) * root_t,
            _NORMAL.inv_cdf(1 - alpha / 4),
        )
    tau2 = _tau2(stable, canary, cfg)
    return (lambda k: log_lambda(stable, canary, k, tau2)), math.log(1 / alpha)


def _p_value(evidence: float, cfg: AnalysisConfig) -> float:
    if cfg.horizon_test:
        return min(1.0, 4 * (1 - _NORMAL.cdf(evidence)))
    return min(1.0, math.exp(-evidence)) if evidence > -700 else 1.0


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
    stable: ArmCounts, canary: ArmCounts, evidence: Callable[[float], float], threshold: float
) -> tuple[float | None, float | None]:
    if stable.clicks == 0:
        return None, None
    k_hat = canary.ctr / stable.ctr

    def significant(k: float) -> bool:
        return evidence(k) >= threshold

    lower = 0.0 if not significant(0.0) else _boundary(k_hat, 0.0, significant)
    hi = max(2 * k_hat, 2.0)
    while not significant(hi) and hi < _MAX_RATIO:
        hi *= 2
    upper = None if not significant(hi) else _boundary(k_hat, hi, significant) - 1
    return lower - 1, upper


def analyse(stable: ArmCounts, canary: ArmCounts, cfg: AnalysisConfig) -> AnalysisResult:
    """Decide wait / pass / fail from counts since the current step started."""
    evidence, threshold = _evidence(stable, canary, cfg)
    k0 = 1 - cfg.max_relative_drop
    ev = evidence(k0)
    p_value = _p_value(ev, cfg)
    lift = canary.ctr / stable.ctr - 1 if stable.clicks else None
    lower, upper = _interval(stable, canary, evidence, threshold)
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
        if cfg.horizon_test:
            t = information(stable, canary, cfg.horizon)
            margin += f", {t:.0%} of the horizon {cfg.horizon}"
        diff = canary.ctr - k0 * stable.ctr
        if ev >= threshold and diff > 0:
            decision, reason = "pass", f"canary not worse: {ctrs}; {margin}"
        elif ev >= threshold and diff < 0:
            decision, reason = "fail", f"canary worse: {ctrs}; {margin}"
        else:
            decision, reason = "wait", f"inconclusive: {ctrs}; {margin}"
    return AnalysisResult(decision, reason, stable, canary, lift, p_value, lower, upper)
