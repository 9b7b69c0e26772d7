"""The canary rollout state machine, driven through a fake cluster that executes its actions and
derives routing and servers from its status.

Every tick goes through JSON (status as the apiserver stores it) and is immediately repeated
with the same inputs: the repeat must ask for nothing (idempotency, restart safety).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gqr_operator import conditions as cond_lib
from gqr_operator.actions import parse_iso
from gqr_operator.rollout import (
    Action,
    AnalysisConfig,
    ArmCounts,
    Controls,
    Event,
    ModelRef,
    Observation,
    RolloutConfig,
    Routing,
    SetCondition,
    Stats,
    Step,
    counts_since,
    desired_routing,
    desired_servers,
    start,
    tick,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NO_CONTROLS = Controls()
V1, V2 = ModelRef("v1", "s3://a/llm/v1"), ModelRef("v2", "s3://a/llm/v2")
CFG = RolloutConfig(
    steps=(Step(10, 2000), Step(50, 5000)),
    analysis=AnalysisConfig(confidence=0.95, max_relative_drop=0.0),
    drain_seconds=30,
)


Counts = tuple[ArmCounts, ArmCounts]


def stats(si: int, sc: int, ci: int, cc: int) -> Counts:
    """What the gateway counted since the current step started (stable, canary)."""
    return ArmCounts(si, sc), ArmCounts(ci, cc)


class Cluster:
    """Executes actions like the operator's tick would, derives the routing and the LLM servers
    from the status as the children sync does, and keeps what `kubectl describe` shows."""

    def __init__(self, cfg: RolloutConfig = CFG) -> None:
        self.cfg = cfg
        self.status: dict[str, Any] = {}
        self.conditions: list[dict[str, Any]] = []
        self.routing: Routing | None = None
        self.llms = {"v1"}
        self.events: list[Event] = []
        self.now = T0

    def start(self, cand: ModelRef = V2) -> None:
        d = start(self.status, cand, V1)
        assert d.actions == []
        self.status = d.status

    def tick(
        self,
        counts: Counts | None = None,
        ready: bool = True,
        controls: Controls = NO_CONTROLS,
        advance: float = 10,
        start: datetime | None = None,
    ) -> list[Action]:
        self.now += timedelta(seconds=advance)
        # As the operator asks: counts since the step's start (before a step: the window's).
        since = counts_since(self.status) or self.now - timedelta(days=14)
        obs = Observation(ready, None if counts is None else Stats(*counts, start or since))
        restored = json.loads(json.dumps(self.status, allow_nan=False))
        d = tick(restored, self.cfg, obs, controls, self.now, self.conditions)
        # Deciding twice from the same status (a crash before acting) gives the same answer.
        assert tick(restored, self.cfg, obs, controls, self.now, self.conditions) == d
        for action in d.actions:
            self.apply(action)
        self.status = json.loads(json.dumps(d.status, allow_nan=False))
        self.routing = desired_routing(self.status)
        self.llms = {m.version for m in desired_servers(self.status)}
        again = tick(self.status, self.cfg, obs, controls, self.now, self.conditions)
        assert again.actions == [], f"repeat tick asked for {again.actions}"
        return d.actions

    def apply(self, a: Action) -> None:
        if isinstance(a, Event):
            self.events.append(a)
        elif isinstance(a, SetCondition):
            new = cond_lib.condition(a.type, a.status, a.reason, a.message)
            self.conditions = cond_lib.merge(self.conditions, new)

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.conditions if c["type"] == type_)

    @property
    def phase(self) -> str:
        return str(self.status["phase"])

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]


def at_step_one(cfg: RolloutConfig = CFG) -> Cluster:
    c = Cluster(cfg)
    c.start()
    c.tick(stats(0, 0, 0, 0), ready=False)
    assert c.phase == "WaitingForCanaryReady" and c.llms == {"v1", "v2"}
    c.tick(stats(1000, 50, 0, 0))
    assert c.phase == "Progressing" and c.routing == Routing("v1", "v2", 10)
    return c


def test_start_queues_once_and_ignores_known_versions() -> None:
    d = start({}, V2, V1)
    assert d.status["pending"]["version"] == "v2" and d.status["stable"]["version"] == "v1"
    assert start(d.status, V2).status == d.status
    assert "pending" not in start({}, V1, V1).status
    with pytest.raises(ValueError, match="stable"):
        start({}, V2)


def test_idle_without_candidate_does_nothing_and_reports_no_canary() -> None:
    c = Cluster()
    c.status = {"phase": "Idle", "stable": {"version": "v1", "artifactUri": ""}}
    assert [a for a in c.tick() if not isinstance(a, SetCondition)] == []
    assert c.condition("CanaryHealthy")["reason"] == "NoCanary"
    assert desired_routing(c.status) == Routing("v1", None, 0)


def test_full_scripted_promote() -> None:
    c = at_step_one()
    c.tick(stats(1000, 50, 1500, 90))
    assert c.status["lastAnalysis"]["decision"] == "wait"
    assert c.status["lastAnalysis"]["stable"]["impressions"] == 1000
    assert c.condition("CanaryHealthy")["reason"] == "Collecting"
    c.tick(stats(39_000, 1950, 5_000, 400))  # 8% vs 5%: clearly better
    assert c.phase == "Progressing" and c.status["stepIndex"] == 1
    assert c.routing == Routing("v1", "v2", 50)
    # The counts in hand are step 1's: step 2 waits for counts from its own start.
    assert c.status["lastAnalysis"] is None and "baseline" not in c.status
    c.tick(stats(20_000, 1000, 20_000, 1500))
    assert c.phase == "Promoting" and c.routing == Routing("v2", None, 0)
    assert c.llms == {"v1", "v2"}, "the old stable drains before it is deleted"
    c.tick(stats(60_000, 3000, 25_000, 1900), advance=35)
    assert c.phase == "Promoted" and c.llms == {"v2"}
    assert c.status["stable"]["version"] == "v2"
    assert c.reasons().count("CanaryStepStarted") == 2 and "CanaryPromoted" in c.reasons()
    assert [h["event"] for h in c.status["history"]] == [
        "StepPassed",
        "StepPassed",
        "Promoting",
        "Promoted",
    ]
    assert c.condition("Progressing")["status"] == "False"
    assert c.condition("Degraded")["status"] == "False"
    assert desired_routing(c.status) == Routing("v2", None, 0)


def test_full_scripted_rollback_reports_the_ctrs() -> None:
    c = at_step_one()
    c.tick(stats(31_000, 1550, 3_000, 60))  # 2% vs 5%
    assert c.phase == "RollingBack" and c.routing == Routing("v1", None, 0)
    degraded = c.condition("Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "CanaryRolledBack"
    assert "2.0000%" in degraded["message"] and "5.0000%" in degraded["message"]
    c.tick(stats(31_000, 1550, 3_000, 60), advance=5)
    assert c.phase == "RollingBack" and "v2" in c.llms
    c.tick(stats(31_000, 1550, 3_000, 60), advance=30)
    assert c.phase == "RolledBack" and c.llms == {"v1"}
    assert c.condition("CanaryHealthy")["reason"] == "CanaryWorse"
    assert any(e.type == "Warning" and e.reason == "CanaryRolledBack" for e in c.events)


def test_stats_unavailable_holds_and_warns_once() -> None:
    c = at_step_one()
    c.tick(None)
    c.tick(None)
    assert c.reasons().count("StatsUnavailable") == 1
    assert c.condition("Degraded")["reason"] == "StatsUnavailable"
    assert c.phase == "Progressing" and c.routing == Routing("v1", "v2", 10)
    c.tick(stats(1500, 75, 100, 5))
    assert c.condition("Degraded")["status"] == "False"


def test_a_stats_outage_longer_than_allowed_rolls_back() -> None:
    cfg = dataclasses.replace(CFG, max_stats_outage_seconds=600)
    c = at_step_one(cfg)
    c.tick(None)  # the outage begins: hold
    c.tick(None, advance=500)
    assert c.phase == "Progressing" and c.routing == Routing("v1", "v2", 10)
    c.tick(None, advance=100)  # 600 s without stats
    assert c.phase == "RollingBack" and c.routing == Routing("v1", None, 0)
    assert "unavailable for 600s" in c.status["message"]
    held = at_step_one(dataclasses.replace(CFG, max_stats_outage_seconds=0))
    held.tick(None)
    held.tick(None, advance=86400)
    assert held.phase == "Progressing"  # 0: hold for as long as it takes


def test_canary_not_ready_during_a_step_holds() -> None:
    c = at_step_one()
    c.tick(stats(40_000, 2000, 5_000, 400), ready=False)
    assert c.phase == "Progressing" and c.status["stepIndex"] == 0
    assert c.condition("CanaryHealthy")["reason"] == "CanaryNotReady"


@pytest.mark.parametrize("phase_setup", ["waiting", "progressing", "paused", "awaiting"])
def test_abort_rolls_back_from_every_active_phase(phase_setup: str) -> None:
    c = Cluster(RolloutConfig(steps=(Step(10, 100),), auto_promote=False))
    c.start()
    c.tick(ready=False)
    if phase_setup != "waiting":
        c.tick(stats(0, 0, 0, 0))
    if phase_setup == "paused":
        c.tick(stats(0, 0, 0, 0), controls=Controls(paused=True))
        assert c.phase == "Paused"
    if phase_setup == "awaiting":
        c.tick(stats(10_000, 500, 2000, 200))
        assert c.status["pauseReason"] == "AwaitingPromotion"
    c.tick(stats(0, 0, 0, 0), controls=Controls(abort=True))
    assert c.phase == "RollingBack" and c.routing == Routing("v1", None, 0)
    c.tick(stats(0, 0, 0, 0), controls=Controls(abort=True), advance=60)
    assert c.phase == "Aborted" and c.llms == {"v1"}


def test_promote_now_skips_analysis_but_waits_for_ready() -> None:
    c = Cluster()
    c.start()
    c.tick(ready=False)
    c.tick(ready=False, controls=Controls(promote_now=True))
    assert c.phase == "WaitingForCanaryReady"
    c.tick(stats(0, 0, 0, 0), controls=Controls(promote_now=True))
    assert c.phase == "Promoting" and c.routing == Routing("v2", None, 0)


def test_manual_pause_freezes_and_resumes() -> None:
    c = at_step_one()
    c.tick(stats(40_000, 2000, 5_000, 400), controls=Controls(paused=True))
    assert c.phase == "Paused" and c.status["stepIndex"] == 0
    assert c.condition("Progressing")["reason"] == "ManualPause"
    c.tick(stats(40_000, 2000, 5_000, 400))
    assert c.phase == "Progressing" and c.status["stepIndex"] == 1


def test_step_pause_waits_for_a_new_resume_value() -> None:
    cfg = RolloutConfig(steps=(Step(10, 1000, pause=True), Step(50, 1000)))
    c = at_step_one(cfg)
    c.tick(stats(40_000, 2000, 5_000, 400), controls=Controls(resume="old"))
    assert c.phase == "Paused" and c.status["pauseReason"] == "StepPause"
    c.tick(stats(40_000, 2000, 5_000, 400), controls=Controls(resume="old"))
    assert c.phase == "Paused"
    c.tick(stats(40_000, 2000, 5_000, 400), controls=Controls(resume="go"))
    assert c.phase == "Progressing" and c.routing == Routing("v1", "v2", 50)


def test_without_auto_promote_the_last_step_waits_for_promote_now() -> None:
    c = at_step_one(RolloutConfig(steps=(Step(10, 1000),), auto_promote=False))
    c.tick(stats(40_000, 2000, 5_000, 400))
    assert c.phase == "Paused" and c.status["pauseReason"] == "AwaitingPromotion"
    c.tick(stats(40_000, 2000, 5_000, 400))
    assert c.phase == "Paused"
    c.tick(stats(40_000, 2000, 5_000, 400), controls=Controls(promote_now=True))
    assert c.phase == "Promoting"


def test_counts_from_before_the_step_are_never_analysed() -> None:
    c = at_step_one()
    started = parse_iso(c.status["stepStarted"])
    assert started is not None
    # Decisive counts, but they began with the step's first second (maybe before the step).
    c.tick(stats(40_000, 2000, 5_000, 400), start=started)
    assert c.status["lastAnalysis"] is None and c.status["stepIndex"] == 0
    c.tick(stats(300, 15, 20, 1), start=started + timedelta(seconds=5))  # rounded up
    assert c.status["lastAnalysis"]["canary"]["impressions"] == 20


def test_a_step_entered_within_the_second_of_the_last_waits_for_its_own_counts() -> None:
    c = Cluster(RolloutConfig(steps=(Step(10, 1000), Step(50, 1000))))
    c.start()
    c.tick(stats(0, 0, 0, 0), advance=0.1)
    assert c.status["stepIndex"] == 0
    # Counts asked for step 1 (they begin a second after its start, i.e. after now) arrive
    # in the same second: whatever they hold, they are not analysed, neither for step 1 nor
    # for a step 2 that would start in this second.
    c.tick(stats(40_000, 2000, 5_000, 400), advance=0.1)
    assert c.status["stepIndex"] == 0 and c.status["lastAnalysis"] is None


def test_counts_that_go_down_are_taken_as_they_are() -> None:
    c = at_step_one()
    c.tick(stats(3000, 150, 400, 20))
    c.tick(stats(300, 15, 20, 1))  # fewer (e.g. the log store was replaced): no re-baseline
    assert c.status["lastAnalysis"]["stable"]["impressions"] == 300
    assert c.status["lastAnalysis"]["canary"]["impressions"] == 20


def test_an_old_baseline_in_status_is_dropped_at_the_next_step() -> None:
    c = at_step_one()
    c.status["baseline"] = {"stable": {"impressions": 9, "clicks": 1}}  # an older operator's
    c.tick(stats(39_000, 1950, 5_000, 400))
    assert c.status["stepIndex"] == 1 and "baseline" not in c.status


def test_a_weight_100_step_is_a_bake_step() -> None:
    c = Cluster(RolloutConfig(steps=(Step(100, 500),)))
    c.start()
    c.tick(stats(1000, 50, 0, 0))
    assert c.routing == Routing("v1", "v2", 100)
    c.tick(stats(1000, 50, 400, 1))
    assert c.phase == "Progressing"
    c.tick(stats(1000, 50, 600, 1))
    assert c.phase == "Promoting"


def test_leftover_controls_hold_the_next_rollout_and_it_restarts_cleanly() -> None:
    c = at_step_one()
    c.tick(stats(0, 0, 0, 0), controls=Controls(abort=True))
    c.tick(controls=Controls(abort=True), advance=60)
    assert c.phase == "Aborted"
    c.start(ModelRef("v3", "s3://a/llm/v3"))
    c.tick(controls=Controls(abort=True), ready=False)
    assert c.phase == "Aborted" and "abort" in c.status["message"]
    c.tick(ready=False)
    assert c.phase == "WaitingForCanaryReady" and c.status["candidate"]["version"] == "v3"
    assert c.status["history"] == [] and "v3" in c.llms


def test_a_new_candidate_during_a_rollout_is_queued() -> None:
    c = at_step_one()
    d = start(c.status, ModelRef("v3"))
    assert d.status["pending"]["version"] == "v3" and d.status["phase"] == "Progressing"


def test_a_pause_on_the_last_step_resumes_into_promotion() -> None:
    c = at_step_one(RolloutConfig(steps=(Step(10, 1000, pause=True),)))
    c.tick(stats(40_000, 2000, 5_000, 400))
    assert c.status["pauseReason"] == "StepPause"
    c.tick(stats(40_000, 2000, 5_000, 400), controls=Controls(resume="ok"))
    assert c.phase == "Promoting"


def test_steps_removed_from_the_spec_mid_rollout_do_not_crash() -> None:
    c = at_step_one()
    c.tick(stats(40_000, 2000, 5_000, 400))
    assert c.status["stepIndex"] == 1
    c.cfg = RolloutConfig(steps=(Step(10, 1000),))
    c.tick(stats(80_000, 4000, 30_000, 2400))
    assert c.phase == "Promoting"


def test_summary_projects_the_crd_arm_fields() -> None:
    from gqr_operator.rollout.status import summary

    c = at_step_one()
    c.tick(stats(2000, 100, 1500, 90))
    s = summary(c.status)
    assert s["stable"] == {"version": "v1", "ctr": 0.05}
    assert s["canary"]["version"] == "v2" and s["canary"]["weight"] == 10
    assert s["canary"]["impressions"] == 1500 and s["canary"]["decision"] == "wait"


LIMITED = (Step(10, 2000, max_impressions=5000), Step(50, 5000))
EQUAL_AT_LIMIT = stats(40_000, 2000, 5_000, 250)  # 5% vs 5%: never significant


def test_an_inconclusive_step_rolls_back_at_max_impressions_by_default() -> None:
    c = at_step_one(RolloutConfig(steps=LIMITED))
    c.tick(stats(36_000, 1800, 4_999, 250))
    assert c.phase == "Progressing" and c.status["lastAnalysis"]["decision"] == "wait"
    c.tick(EQUAL_AT_LIMIT)
    assert c.phase == "RollingBack" and c.routing == Routing("v1", None, 0)
    assert c.status["lastAnalysis"]["decision"] == "inconclusive"
    assert [h["event"] for h in c.status["history"]] == ["StepInconclusive", "RollingBack"]
    warning = next(e for e in c.events if e.reason == "CanaryStepInconclusive")
    assert warning.type == "Warning" and "maxImpressions 5000" in warning.message
    assert "onInconclusive: fail" in warning.message
    c.tick(EQUAL_AT_LIMIT, advance=60)
    assert c.phase == "RolledBack" and c.llms == {"v1"}
    # Not shown worse, so not called worse: the condition says why it was rolled back.
    healthy = c.condition("CanaryHealthy")
    assert healthy["status"] == "Unknown" and healthy["reason"] == "Inconclusive"
    assert "inconclusive at maxImpressions 5000" in healthy["message"]
    assert c.condition("Degraded")["reason"] == "CanaryRolledBack"


def test_a_significant_result_at_the_limit_is_decided_by_the_test() -> None:
    c = at_step_one(RolloutConfig(steps=LIMITED))
    c.tick(stats(40_000, 2000, 6_000, 180))  # 3% vs 5%: worse
    assert c.phase == "RollingBack" and c.status["lastAnalysis"]["decision"] == "fail"
    c.tick(stats(40_000, 2000, 6_000, 180), advance=60)
    assert c.condition("CanaryHealthy")["reason"] == "CanaryWorse"
    assert "CanaryStepInconclusive" not in c.reasons()


def test_the_horizon_test_passes_at_the_limit_a_lift_the_msprt_leaves_inconclusive() -> None:
    # 12.1% vs 11.0% at 5,000 canary impressions (z ~ 2.35): short of the mSPRT's ~3.0 at
    # confidence 0.95, over the horizon test's 2.24 at the step's end.
    at_limit = stats(45_000, 4950, 5_000, 607)
    half_way = stats(22_500, 2475, 2_500, 303)
    msprt = at_step_one(RolloutConfig(steps=LIMITED))
    msprt.tick(half_way)
    msprt.tick(at_limit)
    assert msprt.status["lastAnalysis"]["decision"] == "inconclusive"
    assert msprt.phase == "RollingBack"
    horizon = RolloutConfig(steps=LIMITED, analysis=AnalysisConfig(confidence=0.95, test="horizon"))
    c = at_step_one(horizon)
    c.tick(half_way)  # the same lift half way: the early boundary is higher
    assert c.phase == "Progressing" and c.status["lastAnalysis"]["decision"] == "wait"
    assert "50% of the horizon 5000" in c.status["lastAnalysis"]["reason"]
    c.tick(at_limit)
    assert c.status["stepIndex"] == 1 and c.routing == Routing("v1", "v2", 50)
    assert "CanaryStepPassed" in c.reasons() and "CanaryStepInconclusive" not in c.reasons()
    # Step 2 has no maxImpressions (a spec edited mid-rollout): it falls back to the mSPRT.
    c.tick(stats(10_000, 1100, 10_000, 1210), advance=120)
    assert "horizon" not in c.status["lastAnalysis"]["reason"]


def test_an_inconclusive_step_may_pause_for_a_human() -> None:
    c = at_step_one(RolloutConfig(steps=LIMITED, on_inconclusive="pause"))
    c.tick(EQUAL_AT_LIMIT, controls=Controls(resume="old"))
    assert c.phase == "Paused" and c.status["pauseReason"] == "Inconclusive"
    assert c.condition("Progressing")["reason"] == "Inconclusive"
    c.tick(EQUAL_AT_LIMIT, controls=Controls(resume="old"))
    assert c.phase == "Paused" and c.routing == Routing("v1", "v2", 10)
    c.tick(EQUAL_AT_LIMIT, controls=Controls(resume="go on"))
    assert c.phase == "Progressing" and c.routing == Routing("v1", "v2", 50)


def test_an_inconclusive_pause_can_be_promoted_by_hand() -> None:
    c = at_step_one(RolloutConfig(steps=LIMITED, on_inconclusive="pause"))
    c.tick(EQUAL_AT_LIMIT)
    c.tick(EQUAL_AT_LIMIT, controls=Controls(promote_now=True))
    assert c.phase == "Promoting" and c.routing == Routing("v2", None, 0)


def test_an_inconclusive_step_may_pass() -> None:
    c = at_step_one(RolloutConfig(steps=LIMITED, on_inconclusive="pass"))
    c.tick(EQUAL_AT_LIMIT)
    assert c.phase == "Progressing" and c.status["stepIndex"] == 1
    assert "onInconclusive: pass" in next(
        e.message for e in c.events if e.reason == "CanaryStepInconclusive"
    )


def test_without_a_limit_an_equal_canary_keeps_collecting() -> None:
    c = at_step_one()
    c.tick(stats(400_000, 20_000, 50_000, 2500))
    assert c.phase == "Progressing" and c.status["lastAnalysis"]["decision"] == "wait"


def test_a_limit_below_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match=r"maxImpressions=100 .*>= minImpressions=2000"):
        Step(10, 2000, max_impressions=100)
    with pytest.raises(ValueError, match="onInconclusive='promote'"):
        RolloutConfig(on_inconclusive="promote")  # type: ignore[arg-type]
