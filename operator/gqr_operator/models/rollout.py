"""Spec section of the canary rollout: weight steps, CTR analysis, manual controls."""

from __future__ import annotations

import itertools
from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from gqr_operator.models.common import Model
from gqr_operator.models.markers import Rule, validations


class RolloutStep(Model):
    """One canary step: send `weight` percent of traffic until enough impressions are seen."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "!has(self.maxImpressions) || self.maxImpressions == 0 || self.maxImpressions"
                " >= (has(self.minImpressions) ? self.minImpressions : 10000)",
                "spec.rollout.steps[].maxImpressions must be 0 (no limit) or at least "
                "minImpressions",
            )
        )
    )

    weight: int = Field(ge=1, le=100)
    """Percent of traffic sent to the canary in this step."""
    min_impressions: int = Field(default=10000, ge=0, le=1000000000)
    """Impressions needed on each arm (canary and stable) in this step before it is judged."""
    max_impressions: int = Field(default=0, ge=0, le=1000000000)
    """Per arm: once both arms served this many impressions in the step and the test is still
    not significant, the step is inconclusive and spec.rollout.analysis.onInconclusive
    decides. 0: no limit (the step waits for evidence as long as it takes)."""
    pause: bool = False
    """After the analysis passes at this step, wait for a manual resume: set the annotation
    gqr.dev/resume to a new value."""

    @model_validator(mode="after")
    def _limit(self) -> Self:
        if self.max_impressions and self.max_impressions < self.min_impressions:
            raise ValueError(
                f"spec.rollout.steps[].maxImpressions={self.max_impressions} is below "
                f"minImpressions={self.min_impressions} (accepted: 0 for no limit, or "
                ">= minImpressions)"
            )
        return self


def _default_steps() -> list[RolloutStep]:
    return [
        RolloutStep(weight=10, min_impressions=20000),
        RolloutStep(weight=50, min_impressions=50000),
    ]


class Analysis(Model):
    """How the canary's measured CTR is compared against stable."""

    metric: Literal["ctr"] = "ctr"
    """Metric compared: ctr (clicked impressions / impressions)."""
    test: Literal["msprt", "horizon"] = "msprt"
    """Statistical test, both safe under continuous monitoring: msprt, the mixture sequential
    probability ratio test (always-valid p-values, no end needed), or horizon, a
    group-sequential test (O'Brien-Fleming boundary) that plans for each step to end at its
    maxImpressions and decides a true lift with about half the impressions msprt needs there;
    horizon needs maxImpressions on every step below weight 100."""
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    """Confidence required for a decision."""
    max_relative_drop: float = Field(default=0.0, ge=0.0, le=1.0)
    """Largest relative CTR drop versus stable still accepted (0.02 = 2%)."""
    on_inconclusive: Literal["fail", "pause", "pass"] = "fail"
    """What a step does when it reaches its maxImpressions without a significant result: fail
    (roll back: the canary did not show it is not worse), pause (hold the weight for a human: a
    new gqr.dev/resume value goes on, promoteNow promotes, abort rolls back) or pass (go on as
    if it passed)."""
    max_stats_outage_seconds: int = Field(default=1800, ge=0, le=604800)
    """Seconds a canary step may go without /v1/stats (the gateway unreachable, or answering
    what the operator cannot use) before it rolls back; meanwhile the weight is held. 0 holds
    it for as long as the outage lasts."""
    stats_url: str | None = Field(default=None, max_length=512, pattern=r"^https?://\S+$")
    """URL of the gateway's GET /v1/stats; default: the gateway Service of this GQRDeployment
    (window=14d). The operator adds since=<step start> to its query and analyses only answers
    that say where counting began (start)."""


class Rollout(Model):
    """The canary rollout of a newly trained LLM version."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "!has(self.promoteNow) || !has(self.abort) || !(self.promoteNow && self.abort)",
                "spec.rollout.promoteNow and spec.rollout.abort must not both be true",
            ),
            Rule(
                "!has(self.analysis) || !has(self.analysis.test) || self.analysis.test != "
                "'horizon' || !has(self.steps) || self.steps.all(s, s.weight == 100 || "
                "(has(s.maxImpressions) && s.maxImpressions > 0))",
                "spec.rollout.analysis.test horizon needs maxImpressions > 0 on every step "
                "below weight 100 (or test msprt)",
            ),
        )
    )

    steps: list[RolloutStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=10,
        json_schema_extra=validations(
            Rule(
                "self.map(s, s.weight).isSorted() && self.all(s, self.exists_one(t, t.weight"
                " == s.weight))",
                "spec.rollout.steps weights must be strictly increasing",
            )
        ),
    )
    """Canary traffic steps; weights strictly increasing, each 1-100."""
    analysis: Analysis = Field(default_factory=Analysis)
    """How canary CTR is compared against stable CTR."""
    auto_promote: bool = True
    """Promote the canary after the last step without waiting for promoteNow."""
    paused: bool = False
    """Hold the canary at its current step."""
    promote_now: bool = False
    """Promote the canary now, skipping the remaining steps. The operator never writes the
    spec, so set it back to false afterwards; while it is true the next candidate's rollout
    does not start."""
    abort: bool = False
    """Roll the canary back now. The operator never writes the spec, so set it back to false
    afterwards; while it is true the next candidate's rollout does not start."""
    drain_seconds: int = Field(default=30, ge=0, le=3600)
    """Seconds between moving traffic away from a model and deleting its server (lets every
    gateway replica reload its routing)."""

    @model_validator(mode="after")
    def _rules(self) -> Self:
        weights = [s.weight for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError(
                f"spec.rollout.steps weights {weights} must be strictly increasing "
                "(accepted: e.g. [10, 50, 100], each 1-100)"
            )
        open_ended = [s.weight for s in self.steps if s.weight < 100 and not s.max_impressions]
        if self.analysis.test == "horizon" and open_ended:
            raise ValueError(
                f"spec.rollout.analysis.test='horizon' needs maxImpressions on every step below "
                f"weight 100; the steps of weight {open_ended} have none (accepted: set "
                "maxImpressions, the step's end that the test plans for, or test: msprt)"
            )
        if self.promote_now and self.abort:
            raise ValueError(
                "spec.rollout.promoteNow and spec.rollout.abort are both true (accepted: one)"
            )
        return self
