"""Spec section of the canary rollout: weight steps, CTR analysis, manual controls."""

from __future__ import annotations

import itertools
from typing import Literal, Self

from pydantic import Field, model_validator

from gqr_operator.models.common import Model


class RolloutStep(Model):
    """One canary step: send `weight` percent of traffic until enough impressions are seen."""

    weight: int = Field(ge=1, le=100)
    min_impressions: int = Field(default=10000, ge=0, le=1000000000)
    max_impressions: int = Field(default=0, ge=0, le=1000000000)
    pause: bool = False

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
    test: Literal["msprt", "horizon"] = "msprt"
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    max_relative_drop: float = Field(default=0.0, ge=0.0, le=1.0)
    on_inconclusive: Literal["fail", "pause", "pass"] = "fail"
    stats_url: str | None = Field(default=None, max_length=512, pattern=r"^https?://\S+$")


class Rollout(Model):
    """The canary rollout of a newly trained LLM version."""

    steps: list[RolloutStep] = Field(default_factory=_default_steps, min_length=1, max_length=10)
    analysis: Analysis = Field(default_factory=Analysis)
    auto_promote: bool = True
    paused: bool = False
    promote_now: bool = False
    abort: bool = False
    drain_seconds: int = Field(default=30, ge=0, le=3600)

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
