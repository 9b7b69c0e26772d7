"""The update pipeline: triggers, one Job per step, results, the gate, restarts."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gqr_contracts.job import InvalidResult
from gqr_operator.pipeline import (
    STEPS,
    JobObservation,
    PipelineConfig,
    current_job,
    due,
    job_name,
    latest_fire,
    next_fire,
    parse_result,
    schedule_error,
    tick,
)
from gqr_operator.rollout import Action, CreateJob, Event, SetCondition, StartRollout

T0 = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)  # a Sunday, one hour before "0 3 * * 0"
CFG = PipelineConfig(cr_name="followup", base_model="s3://a/llm/v1", min_aec_gain=0.002)


def result(step: str, status: str = "succeeded", **extra: Any) -> str:
    doc: dict[str, Any] = {
        "kind": "job_result",
        "job": step,
        "status": status,
        "version": f"{step}-7",
        "artifact_uri": f"s3://a/{step}/7",
        "metrics": {"aec": 0.125, "aec_stable": 0.120} if step == "dpo-iterate" else {},
    }
    return json.dumps({**doc, **extra})


class Cluster:
    """Executes pipeline actions: Jobs exist once created; their outcome is scripted."""

    def __init__(self, cfg: PipelineConfig = CFG) -> None:
        self.cfg = cfg
        self.status: dict[str, Any] = {}
        self.conditions: list[dict[str, Any]] = []
        self.jobs: dict[str, JobObservation] = {}
        self.created: list[str] = []
        self.events: list[Event] = []
        self.rollouts: list[StartRollout] = []
        self.now = T0

    def tick(self, annotation: str | None = None, advance: float = 60) -> list[Action]:
        self.now += timedelta(seconds=advance)
        name = current_job(self.status)
        job = self.jobs.get(name) if name else None
        restored = json.loads(json.dumps(self.status, allow_nan=False))
        d = tick(restored, self.cfg, job, annotation, self.now, self.conditions)
        assert tick(restored, self.cfg, job, annotation, self.now, self.conditions) == d
        for a in d.actions:
            if isinstance(a, CreateJob):
                self.created.append(a.name)
                self.jobs.setdefault(a.name, JobObservation("active"))
            elif isinstance(a, Event):
                self.events.append(a)
            elif isinstance(a, StartRollout):
                self.rollouts.append(a)
            elif isinstance(a, SetCondition):
                others = [c for c in self.conditions if c["type"] != a.type]
                self.conditions = [*others, {"type": a.type, "status": a.status,
                                             "reason": a.reason, "message": a.message}]  # fmt: skip
        self.status = json.loads(json.dumps(d.status, allow_nan=False))
        # The same inputs once the actions ran (the Job now exists) ask for nothing more.
        name = current_job(self.status)
        job = self.jobs.get(name) if name else None
        again = tick(self.status, self.cfg, job, annotation, self.now, self.conditions)
        assert again.actions == [], again.actions
        return d.actions

    def finish(self, step: str, message: str | None = None, failed: str = "") -> None:
        name = job_name(self.cfg.cr_name, step, self.status["runId"])
        text = result(step) if message is None else message
        self.jobs[name] = JobObservation("failed" if failed else "succeeded", text, failed)

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.conditions if c["type"] == type_)


def started(annotation: str = "a1") -> Cluster:
    c = Cluster()
    c.tick()
    assert c.status["phase"] == "Idle" and c.created == []
    c.tick(annotation)
    assert c.status["phase"] == "Running" and c.status["trigger"] == "manual"
    assert c.created == ["followup-cor-build-1"]
    return c


def test_full_run_passes_the_gate_and_starts_a_rollout() -> None:
    c = started()
    c.tick("a1")
    assert c.status["steps"][0]["state"] == "Running"
    c.finish("cor-build")
    c.tick("a1")
    c.finish("ctr-train")
    c.tick("a1")
    assert c.created == [job_name("followup", s, "1") for s in STEPS]
    c.finish("dpo-iterate")
    actions = c.tick("a1")
    create = [a for a in actions if isinstance(a, CreateJob)]
    assert create == []
    assert c.status["phase"] == "Succeeded"
    assert c.rollouts == [StartRollout("dpo-iterate-7", "s3://a/dpo-iterate/7", "1")]
    assert c.status["gate"]["gain"] == pytest.approx(0.005) and c.status["gate"]["passed"]
    assert c.condition("TrainingSucceeded")["reason"] == "GatePassed"
    assert "0.1250" in c.condition("TrainingSucceeded")["message"]


def test_dpo_job_gets_the_earlier_artifacts_as_inputs() -> None:
    c = started()
    c.finish("cor-build")
    c.tick("a1")
    c.finish("ctr-train")
    actions = c.tick("a1")
    (create,) = [a for a in actions if isinstance(a, CreateJob)]
    assert create.step == "dpo-iterate" and create.run_id == "1"
    assert dict(create.inputs) == {
        "base_model": "s3://a/llm/v1",
        "cor_uri": "s3://a/cor-build/7",
        "ctr_uri": "s3://a/ctr-train/7",
    }


def test_gate_not_passed_is_not_promoted() -> None:
    c = started()
    c.finish("cor-build")
    c.tick("a1")
    c.finish("ctr-train")
    c.tick("a1")
    c.finish("dpo-iterate", result("dpo-iterate", metrics={"aec": 0.121, "aec_stable": 0.12}))
    c.tick("a1")
    assert c.status["phase"] == "NotPromoted" and c.rollouts == []
    assert c.condition("TrainingSucceeded")["reason"] == "GateNotPassed"
    assert "CandidateNotPromoted" in [e.reason for e in c.events]


@pytest.mark.parametrize("failing", STEPS)
def test_a_failed_step_stops_the_run_with_the_reason(failing: str) -> None:
    c = started()
    for step in STEPS:
        if step == failing:
            c.finish(step, result(step, "failed", message="OOMKilled loading logs"), "Failed")
            c.tick("a1")
            break
        c.finish(step)
        c.tick("a1")
    assert c.status["phase"] == "Failed" and c.rollouts == []
    cond = c.condition("TrainingSucceeded")
    assert cond["status"] == "False" and "OOMKilled" in cond["message"]
    assert failing in cond["message"] and "stable serves" in cond["message"]
    warning = [e for e in c.events if e.type == "Warning"]
    assert [e.reason for e in warning] == ["PipelineStepFailed"]
    assert len(c.created) == STEPS.index(failing) + 1


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "Traceback (most recent call last):\n  boom",
        '{"kind": "job_result", "job": "cor-build", "status": "maybe"}',
        '{"kind": "job_result", "job": "ctr-train", "status": "succeeded", "artifact_uri": "x"}',
        '{"kind": "job_result", "job": "cor-build", "status": "succeeded"}',
        "[1, 2]",
    ],
)
def test_garbage_termination_message_fails_the_step_clearly(garbage: str) -> None:
    c = started()
    c.finish("cor-build", garbage)
    c.tick("a1")
    step = c.status["steps"][0]
    assert step["state"] == "Failed" and step["reason"] == "InvalidResult"
    assert c.status["phase"] == "Failed"


def test_a_vanished_running_job_fails_and_a_pending_one_is_recreated_by_name() -> None:
    c = started()
    c.jobs.clear()  # not yet in the handler's cache
    actions = c.tick("a1")
    assert [a.name for a in actions if isinstance(a, CreateJob)] == ["followup-cor-build-1"]
    c.tick("a1")
    assert c.status["steps"][0]["state"] == "Running"
    c.jobs.clear()
    c.tick("a1")
    assert c.status["steps"][0]["reason"] == "JobMissing"


def test_restart_at_every_phase_never_names_a_second_job() -> None:
    c = started()
    snapshots = [json.dumps(c.status)]
    for step in STEPS:
        c.finish(step)
        c.tick("a1")
        snapshots.append(json.dumps(c.status))
    for snap in snapshots:  # a fresh operator reading each persisted status
        status = json.loads(snap)
        name = current_job(status)
        d = tick(status, CFG, c.jobs.get(name) if name else None, "a1", c.now, c.conditions)
        names = {a.name for a in d.actions if isinstance(a, CreateJob)}
        assert names <= set(c.created)
    assert len(c.created) == len(set(c.created)) == 3


def test_trigger_during_a_run_is_queued_coalesced_and_started_after() -> None:
    c = started()
    c.tick("a2")
    c.tick("a3")
    assert c.status["pending"] == {"trigger": "manual", "value": "a3"}
    assert c.created == ["followup-cor-build-1"]
    c.finish("cor-build", failed="BackoffLimitExceeded", message="")
    c.tick("a3")
    assert c.status["runId"] == "2" and c.status["triggerValue"] == "a3"
    assert c.created[-1] == "followup-cor-build-2" and c.status["pending"] is None


def test_schedule_fires_once_per_fire_time() -> None:
    c = Cluster()
    c.tick()  # 02:01, first sight: counts from now
    c.tick(advance=3600)  # 03:01: the Sunday 03:00 fire
    assert c.status["trigger"] == "schedule" and c.status["lastScheduleTime"].endswith("03:00:00Z")
    c.tick()
    assert c.status["runNumber"] == 1


def test_missed_fire_times_coalesce_into_one_run() -> None:
    c = Cluster(PipelineConfig("followup", "s3://m", schedule="0 * * * *"))
    c.tick()
    c.tick(advance=5 * 3600)
    assert c.status["runNumber"] == 1 and c.status["lastScheduleTime"].endswith("07:00:00Z")


def test_suspend_ignores_the_schedule_but_not_the_annotation() -> None:
    cfg = PipelineConfig("followup", "s3://m", schedule="0 * * * *", suspend=True)
    c = Cluster(cfg)
    c.tick()
    c.tick(advance=7200)
    assert c.status["phase"] == "Idle"
    c.tick("now")
    assert c.status["phase"] == "Running"


def test_bad_schedule_is_a_condition_not_an_exception() -> None:
    c = Cluster(PipelineConfig("followup", "s3://m", schedule="61 * * * *"))
    c.tick()
    c.tick(advance=7200)
    cond = c.condition("TrainingScheduled")
    assert cond["status"] == "False" and cond["reason"] == "InvalidSchedule"
    assert "61 * * * *" in cond["message"]
    assert [e.reason for e in c.events] == ["InvalidSchedule"]


def test_schedule_helpers_are_utc_and_dst_free() -> None:
    # Across the EU (30 Mar) and US (9 Mar) DST changes a daily schedule stays 24 h apart.
    fires = [datetime(2025, 3, 1, 3, tzinfo=UTC)]
    for _ in range(40):
        nxt = next_fire("0 3 * * *", fires[-1])
        assert nxt is not None
        fires.append(nxt)
    assert {b - a for a, b in itertools.pairwise(fires)} == {timedelta(days=1)}
    sunday_3 = datetime(2025, 3, 2, 3, tzinfo=UTC)
    assert due("0 3 * * 0", sunday_3 - timedelta(minutes=1), sunday_3)
    assert not due("0 3 * * 0", sunday_3, sunday_3 + timedelta(days=6))
    assert not due("0 3 * * 0", None, sunday_3)
    assert latest_fire("0 3 * * 0", sunday_3 + timedelta(seconds=30)) == sunday_3
    assert schedule_error("@weekly") is None and schedule_error("bad") is not None
    assert next_fire("nonsense", sunday_3) is None


def test_job_names_are_dns_labels_and_match_the_builder() -> None:
    from gqr_operator.resources.jobs import job_name as builder_job_name

    long = "x" * 60
    name = job_name(long, "dpo-iterate", "12345")
    assert len(name) <= 63 and name == builder_job_name(long, "dpo-iterate", "12345")
    assert job_name("followup", "ctr-train", "3") == "followup-ctr-train-3"


def test_parse_result_keeps_the_last_json_line_of_a_log_tail() -> None:
    text = "loading...\nepoch 3 done\n" + result("ctr-train")
    assert parse_result(text, "ctr-train").artifact_uri == "s3://a/ctr-train/7"
    with pytest.raises(InvalidResult, match="finite"):
        parse_result(result("ctr-train", metrics={"auc": float("nan")}), "ctr-train")
    with pytest.raises(InvalidResult, match="cor-build step"):
        parse_result(result("ctr-train"), "cor-build")


def _hourly(failure_backoff_s: float, max_consecutive_failures: int) -> Cluster:
    """A cluster whose pipeline runs every hour on the hour."""
    cfg = PipelineConfig(
        "followup", "s3://m", schedule="0 * * * *", failure_backoff_s=failure_backoff_s,
        max_consecutive_failures=max_consecutive_failures,
    )  # fmt: skip
    return Cluster(cfg)


def _fail_run(c: Cluster, advance: float) -> None:
    """Let the schedule start a run (``advance`` seconds on) and fail its first step."""
    before = c.status.get("runNumber", 0)
    c.tick(advance=advance)
    assert c.status["runNumber"] == before + 1 and c.status["phase"] == "Running"
    c.finish("cor-build", failed="BackoffLimitExceeded: bucket gone")
    c.tick(advance=1)
    assert c.status["phase"] == "Failed"


def test_failed_runs_back_off_then_suspend_the_schedule_until_a_run_succeeds() -> None:
    c = _hourly(failure_backoff_s=3600.0, max_consecutive_failures=3)
    c.tick()  # 02:01
    _fail_run(c, 3600)  # the 03:00 fire: failure 1, back off 1 h
    c.tick(advance=3600)  # the 04:00 fire lies within the hour: skipped, said so
    assert c.status["runNumber"] == 1
    assert "back off until" in c.events[-1].message and c.events[-1].reason == "ScheduledRunSkipped"
    _fail_run(c, 3600)  # 05:00: failure 2, back off 2 h
    c.tick(advance=3600)  # 06:00 skipped
    c.tick(advance=3600)  # 07:00 skipped (within 2 h of the failure at 05:01)
    assert c.status["runNumber"] == 2
    _fail_run(c, 3600)  # 08:00: failure 3: suspended
    cond = c.condition("TrainingScheduled")
    assert (cond["status"], cond["reason"]) == ("False", "SuspendedAfterFailures")
    assert "3 runs failed in a row" in cond["message"] and "gqr.dev/retrain" in cond["message"]
    assert any(e.reason == "PipelineSuspended" and e.type == "Warning" for e in c.events)
    for _ in range(24):  # a day of hourly fires: none starts a run
        c.tick(advance=3600)
    assert c.status["runNumber"] == 3
    c.tick("fixed")  # a manual trigger still runs; its success lifts the suspension
    for step in STEPS:
        c.finish(step)
        c.tick("fixed", advance=1)
    assert c.status["consecutiveFailures"] == 0 and c.status["suspended"] is None
    assert c.condition("TrainingScheduled")["reason"] == "Scheduled"
    assert any(e.reason == "PipelineResumed" for e in c.events)
    c.tick("fixed", advance=3600)
    assert c.status["runNumber"] == 5  # the schedule starts runs again


def test_never_suspended_with_max_consecutive_failures_zero() -> None:
    c = _hourly(failure_backoff_s=0.0, max_consecutive_failures=0)
    c.tick()
    for _ in range(5):
        _fail_run(c, 3600)
    assert c.status["consecutiveFailures"] == 5 and not c.status.get("suspended")
