"""Inputs of the rollout machine: its typed config (from the spec) and what one tick observed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from gqr_operator.rollout.analysis import AnalysisConfig, ArmCounts

OnInconclusive = Literal["fail", "pause", "pass"]


@dataclass(frozen=True)
class Step:
    """One canary step."""

    weight: int
    """Percent of traffic to the canary at this step (1-100)."""
    min_impressions: int = 10000
    """New canary impressions at this weight before the analysis may decide (per arm)."""
    pause: bool = False
    """After the analysis passes, wait for a manual resume (`Controls.resume`) here."""
    max_impressions: int = 0
    """Per arm: when both arms reached it and the test is still not significant, the step is
    inconclusive and `RolloutConfig.on_inconclusive` decides. 0: no limit (wait for evidence)."""

    def __post_init__(self) -> None:
        if not 1 <= self.weight <= 100:
            raise ValueError(f"step weight={self.weight} (accepted: 1-100)")
        if self.min_impressions < 0:
            raise ValueError(f"step minImpressions={self.min_impressions} (accepted: >= 0)")
        if self.max_impressions and self.max_impressions < self.min_impressions:
            raise ValueError(
                f"step maxImpressions={self.max_impressions} (accepted: 0 for no limit, or "
                f">= minImpressions={self.min_impressions})"
            )


@dataclass(frozen=True)
class RolloutConfig:
    """The canary rollout, from `spec.rollout`."""

    steps: tuple[Step, ...] = (Step(10, 20000), Step(50, 50000))
    """Weights strictly increasing. A weight-100 step has no stable traffic to compare with:
    it is a bake step that passes once the canary served `min_impressions` without errors."""
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    """Confidence, allowed drop and tau; `min_impressions` is taken from each step."""
    auto_promote: bool = True
    """Promote after the last step passes; otherwise wait for `promoteNow`."""
    on_inconclusive: OnInconclusive = "fail"
    """What a step does when it reaches `max_impressions` without a significant result:
    `fail` rolls back (keep what is proven), `pause` holds the weight for a human (resume goes
    to the next step, promoteNow / abort as always), `pass` goes on as if it passed."""
    drain_seconds: float = 30.0
    """Between switching routing away from a model and deleting its server, so the gateway
    reloads its routing before in-flight requests lose their backend."""
    max_stats_outage_seconds: float = 1800.0
    """A step whose /v1/stats stays unavailable this long rolls back (the canary keeps its
    share of traffic unmeasured meanwhile); 0 holds the weight for as long as it takes."""

    def __post_init__(self) -> None:
        weights = [s.weight for s in self.steps]
        if not weights or any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError(f"rollout step weights {weights} must be non-empty and increasing")
        if self.on_inconclusive not in ("fail", "pause", "pass"):
            raise ValueError(
                f"onInconclusive={self.on_inconclusive!r} (accepted: fail, pause, pass)"
            )


@dataclass(frozen=True)
class Controls:
    """The manual controls in `spec.rollout` (and the resume annotation)."""

    paused: bool = False
    """Freeze: keep the current weight, do not analyse or advance."""
    promote_now: bool = False
    """Promote the current candidate as soon as its server is ready, skipping analysis."""
    abort: bool = False
    """Roll back now. Takes precedence over everything else."""
    resume: str | None = None
    """Value of the `gqr.dev/resume` annotation; a new value resumes a step pause."""


@dataclass(frozen=True)
class Stats:
    """The gateway's `GET /v1/stats?since=<step start>`: counts per arm from `start` on."""

    stable: ArmCounts
    """Stable arm."""
    canary: ArmCounts
    """Canary arm."""
    start: datetime
    """The first instant the counts cover (the gateway's `start`). A step analyses them only
    when it is not before the step's own start: earlier counts mix two traffic splits."""


@dataclass(frozen=True)
class Observation:
    """What the handler saw this tick."""

    canary_ready: bool
    """The candidate's LLM Deployment has all replicas ready."""
    stats: Stats | None
    """None when the gateway could not be reached (the machine then holds still)."""
    stats_error: str = ""
    """Why `stats` is None, for the `StatsUnavailable` Event."""


@dataclass(frozen=True)
class ModelRef:
    """A model version and where its weights live."""

    version: str
    """Version string (names the LLM Deployment)."""
    artifact_uri: str = ""
    """Artifact URI of the weights or adapter."""
