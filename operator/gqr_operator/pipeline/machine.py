"""The update pipeline state machine: triggers, one Job per step, the offline gate.

A run is of one stage, fixed when it starts (`status.pipeline.stage`): `bootstrap` (annotate
-> cor-build -> ctr-train -> sft) while no fine-tuned model has been promoted and
spec.bootstrap is set, else `regular` (cor-build -> ctr-train -> dpo-iterate). Both end at the
same AEC gate, on the last step's `aec` and `aec_stable`.

One pure `tick` per timer interval: it notices triggers (cron schedule, a new value of the
`gqr.dev/retrain` annotation), starts a run, follows the current step's Job, and at the end
applies the AEC gate. All state lives in `status.pipeline`; Job names are derived from the run
number kept there, so a restart re-derives the same names and never a second Job.

One run at a time. A trigger during a run is remembered in `pending` and started after it;
further triggers during the same run coalesce into that one (the newest wins): retraining
twice back to back on nearly the same data buys nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from gqr_contracts.job import AEC, AEC_STABLE, InvalidResult
from gqr_operator.actions import (
    CreateJob,
    Decision,
    Event,
    StartRollout,
    Tick,
    iso,
    parse_iso,
    working_copy,
)
from gqr_operator.pipeline.config import INPUT_OF, JobObservation, PipelineConfig, job_name
from gqr_operator.pipeline.results import parse_result, result_status
from gqr_operator.pipeline.schedule import due, latest_fire, schedule_error
from gqr_operator.pipeline.status import desired_conditions


def current_job(status: Mapping[str, Any] | None) -> str | None:
    """The Job the handler should observe for the next tick (None when no run is active)."""
    st = status or {}
    if st.get("phase") != "Running":
        return None
    return next((s["jobName"] for s in st.get("steps", []) if s["name"] == st["currentStep"]), None)


def tick(
    status: Mapping[str, Any] | None,
    cfg: PipelineConfig,
    job: JobObservation | None,
    annotation: str | None,
    now: datetime,
    conditions: Iterable[Mapping[str, Any]] | None = None,
) -> Decision:
    """Advance the pipeline by one tick. `job` observes `current_job(status)`; `annotation` is
    the value of `gqr.dev/retrain`; `conditions` is the current `status.conditions`."""
    t = _Tick(working_copy(status), cfg, now)
    was_running = t.st.get("phase") == "Running"
    t.triggers(annotation)
    if was_running:
        t.follow(job)
    if t.st.get("phase") != "Running" and t.st.get("pending"):
        t.begin(t.st.pop("pending"))
    t.st.setdefault("pending", None)
    return t.decision(conditions, desired_conditions)


@dataclasses.dataclass
class _Tick(Tick):
    cfg: PipelineConfig
    now: datetime

    def triggers(self, annotation: str | None) -> None:
        err = schedule_error(self.cfg.schedule)
        if err != self.st.get("scheduleError"):
            if err:
                self.actions.append(Event("InvalidSchedule", err, "Warning"))
            self.st["scheduleError"] = err
        last = parse_iso(self.st.get("lastScheduleTime"))
        if last is None:
            # First sight: the schedule counts from now, it does not fire retroactively.
            self.st["lastScheduleTime"] = iso(self.now)
        elif not err and not self.cfg.suspend and due(self.cfg.schedule, last, self.now):
            # Missed fire times (operator down) coalesce into one run: record the latest.
            fire = latest_fire(self.cfg.schedule, self.now) or self.now
            self.st["lastScheduleTime"] = iso(fire)
            held = self._held_back(fire)
            if held:
                self.actions.append(Event("ScheduledRunSkipped", f"{iso(fire)}: {held}"))
            else:
                self._trigger("schedule", iso(fire))
        if annotation and annotation != self.st.get("lastTriggerValue"):
            self.st["lastTriggerValue"] = annotation
            self._trigger("manual", annotation)

    def _held_back(self, fire: datetime) -> str | None:
        """Why the scheduled fire at ``fire`` starts no run after failed runs (backoff,
        suspension)."""
        failures = int(self.st.get("consecutiveFailures") or 0)
        if failures == 0:
            return None
        if self.st.get("suspended"):
            return str(self.st["suspended"]["message"])
        finished = parse_iso(self.st.get("finished"))
        backoff_s = self.cfg.failure_backoff_s * 2 ** (failures - 1)
        if finished is not None and (fire - finished).total_seconds() < backoff_s:
            until = iso(finished + timedelta(seconds=backoff_s))
            return f"{failures} failed run(s) in a row; scheduled runs back off until {until}"
        return None

    def _trigger(self, kind: str, value: str) -> None:
        self.st["pending"] = {"trigger": kind, "value": value}
        if self.st.get("phase") == "Running":
            msg = f"{kind} trigger {value!r} queued behind run {self.st.get('runId')}"
            self.actions.append(Event("PipelineRunQueued", msg))

    def begin(self, trigger: Mapping[str, str]) -> None:
        number = int(self.st.get("runNumber", 0)) + 1
        run_id = str(number)
        steps = self.cfg.run_steps()
        self.st.update(
            runNumber=number,
            runId=run_id,
            trigger=trigger["trigger"],
            triggerValue=trigger["value"],
            phase="Running",
            stage=self.cfg.stage,
            started=iso(self.now),
            finished=None,
            baseModel=self.cfg.base_model,
            steps=[
                {"name": s, "jobName": job_name(self.cfg.cr_name, s, run_id), "state": "Pending"}
                for s in steps
            ],
            gate=None,
            candidate=None,
            message=f"{self.cfg.stage} run {run_id} started by {trigger['trigger']} "
            f"({trigger['value']}): {' -> '.join(steps)}",
        )
        self.actions.append(Event("PipelineRunStarted", self.st["message"]))
        self._start_step(0)

    def _start_step(self, index: int) -> None:
        step = self.st["steps"][index]
        self.st["currentStep"] = step["name"]
        step.update(state="Pending", started=iso(self.now))
        self.actions.append(self._create(index))

    def _create(self, index: int) -> CreateJob:
        step = self.st["steps"][index]
        inputs = {"base_model": str(self.st["baseModel"])}
        for earlier in self.st["steps"][:index]:
            if earlier["name"] in INPUT_OF:
                inputs[INPUT_OF[earlier["name"]]] = earlier["result"]["artifactUri"]
        return CreateJob(step["jobName"], step["name"], str(self.st["runId"]), inputs)

    def follow(self, job: JobObservation | None) -> None:
        index = next(
            i for i, s in enumerate(self.st["steps"]) if s["name"] == self.st["currentStep"]
        )
        step = self.st["steps"][index]
        state = job.state if job else "absent"
        if state == "absent":
            if step["state"] == "Pending":
                # Created but not yet in the handler's cache, or the create never ran:
                # asking again is harmless (same name, AlreadyExists is success).
                self.actions.append(self._create(index))
            else:
                self._fail(step, "JobMissing", f"Job {step['jobName']} disappeared while running")
            return
        if state == "active":
            step["state"] = "Running"
            return
        assert job is not None
        try:
            result = parse_result(job.termination_message, step["name"])
        except InvalidResult as err:
            if state == "failed":
                return self._fail(step, job.failure, job.reason or "the Job failed")
            return self._fail(step, "InvalidResult", str(err))
        if state == "failed" or result.status == "failed":
            why = "; ".join(x for x in (job.reason, result.message) if x) or "the Job failed"
            return self._fail(step, "JobFailed", why)
        step.update(state="Succeeded", finished=iso(self.now), result=result_status(result))
        if index + 1 < len(self.st["steps"]):
            return self._start_step(index + 1)
        missing = [m for m in (AEC, AEC_STABLE) if m not in result.metrics]
        if missing:
            why = f"{step['name']} reported no {' or '.join(missing)} for the AEC gate"
            return self._fail(step, "InvalidResult", why)
        self._gate(result.version, result.artifact_uri, result.metrics)

    def _run_label(self) -> str:
        """`run 3`, or `bootstrap run 1` for a bootstrap run."""
        stage = self.st.get("stage")
        return f"{stage + ' ' if stage == 'bootstrap' else ''}run {self.st['runId']}"

    def _fail(self, step: dict[str, Any], reason: str, why: str) -> None:
        step.update(state="Failed", finished=iso(self.now), reason=reason, message=why)
        msg = f"{self._run_label()}: {step['name']} failed ({reason}): {why}"
        self.st.update(phase="Failed", finished=iso(self.now), message=msg + "; stable serves")
        self.actions.append(Event("PipelineStepFailed", msg, "Warning"))
        failures = int(self.st.get("consecutiveFailures") or 0) + 1
        self.st["consecutiveFailures"] = failures
        limit = self.cfg.max_consecutive_failures
        if limit and failures >= limit and not self.st.get("suspended"):
            note = (
                f"{failures} runs failed in a row (last: run {self.st['runId']}, {step['name']}); "
                "scheduled runs are suspended until a run succeeds: fix the cause, then set the "
                "gqr.dev/retrain annotation to run again"
            )
            self.st["suspended"] = {"since": iso(self.now), "message": note}
            self.actions.append(Event("PipelineSuspended", note, "Warning"))

    def _succeeded_run(self) -> None:
        """A run got through every step (whatever its gate said): failures are behind us."""
        if self.st.get("suspended"):
            self.actions.append(Event("PipelineResumed", "a run succeeded; the schedule applies"))
        self.st.update(consecutiveFailures=0, suspended=None)

    def _gate(self, version: str, uri: str, metrics: Mapping[str, float]) -> None:
        self._succeeded_run()
        aec, stable = metrics[AEC], metrics[AEC_STABLE]
        gain = aec - stable
        passed = gain > self.cfg.min_aec_gain
        self.st["gate"] = {
            "aec": aec,
            "aecStable": stable,
            "gain": round(gain, 6),
            "minAecGain": self.cfg.min_aec_gain,
            "passed": passed,
        }
        numbers = f"AEC {aec:.4f} vs stable {stable:.4f} (gain {gain:+.4f}, needed > "
        numbers += f"{self.cfg.min_aec_gain:+.4f})"
        self.st["finished"] = iso(self.now)
        if passed:
            self.st.update(phase="Succeeded", candidate={"version": version, "artifactUri": uri})
            self.st["message"] = f"{self._run_label()}: candidate {version}: {numbers}"
            self.actions.append(StartRollout(version, uri, str(self.st["runId"])))
            self.actions.append(Event("CandidateReady", self.st["message"]))
        else:
            self.st.update(phase="NotPromoted", message=f"{version} not promoted: {numbers}")
            self.actions.append(Event("CandidateNotPromoted", self.st["message"]))
