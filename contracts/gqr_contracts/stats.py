"""The gateway's ``GET /v1/stats`` answer: impressions and clicks per arm and model version
since a time. The gateway serves it; the operator's canary analysis reads it (from the
gateway, or from a ``spec.rollout.analysis.statsUrl`` service speaking the same shape)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_ROWS = 1024


class ArmStats(BaseModel):
    """Counts of one (arm, model version)."""

    model_config = ConfigDict(frozen=True)
    arm: str = Field(max_length=64)
    model_version: str = Field(max_length=253)
    impressions: int = Field(ge=0)
    clicks: int = Field(0, ge=0, description="Distinct (impression, position) clicks.")
    clicked_impressions: int | None = Field(
        None,
        ge=0,
        description="Impressions with at least one click: the list CTR's successes. A service "
        "that leaves it out is read by its clicks.",
    )
    fallbacks: int = Field(0, ge=0, description="Impressions served without the LLM.")
    invalid_clicks: int = Field(
        0,
        ge=0,
        description="Clicks judged invalid traffic (click farms, bots): logged, not in clicks.",
    )
    invalid_impressions: int = Field(
        0,
        ge=0,
        description="Impressions with invalid clicks: not in impressions (nor their clicks).",
    )
    ctr: float = Field(0.0, ge=0, description="clicks / impressions (0 without impressions).")

    @property
    def successes(self) -> int:
        """What the canary analysis counts as a success, at most one per impression."""
        hits = self.clicks if self.clicked_impressions is None else self.clicked_impressions
        return min(hits, self.impressions)


class StatsAnswer(BaseModel):
    """The whole answer."""

    model_config = ConfigDict(frozen=True)
    window_s: float | None = Field(None, ge=0, description="The window asked for, in seconds.")
    start: float = Field(
        ge=0,
        lt=1e11,
        description="Unix time of the first minute counted: the later of the window's start, "
        "since rounded up to a whole minute, and the oldest minute kept. An answer without it "
        "comes from an endpoint that ignores since, whose counts cannot be limited to a step.",
    )
    arms: list[ArmStats] = Field(default_factory=list, max_length=MAX_ROWS)
    refreshed_at: float | None = Field(None, description="Unix time the logs were last read.")
