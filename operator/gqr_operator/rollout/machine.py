"""The canary rollout state machine: one pure `tick` per analysis interval, state in status.

`start` queues a candidate; `tick` walks it through the weight steps, analysing measured CTR
at each, and promotes or rolls back. Both return a `Decision` (new `status.rollout` + actions).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from gqr_operator.actions import Decision, Event, Tick, iso, parse_iso, working_copy
from gqr_operator.rollout.analysis import ArmCounts, analyse
from gqr_operator.rollout.config import Controls, ModelRef, Observation, RolloutConfig, Step
from gqr_operator.rollout.status import RESTING, counts_since, desired_conditions, ref_dict

_HISTORY_MAX = 30
_MAX_TRANSITIONS = 8


def start(
    status: Mapping[str, Any] | None, candidate: ModelRef, stable: ModelRef | None = None
) -> Decision:
    """Queue a candidate (the next `tick` starts it). Idempotent: a version already queued,
    in rollout, or serving is ignored; a newer candidate replaces a queued one."""
    st = working_copy(status)
    if "stable" not in st:
        if stable is None:
            raise ValueError("no stable version in status.rollout: pass the serving model")
        st["stable"] = ref_dict(stable)
    known = {st["stable"]["version"], (st.get("pending") or {}).get("version")}
    if st.get("phase") not in RESTING:
        known.add((st.get("candidate") or {}).get("version"))
    if candidate.version in known:
        return Decision(st)
    st["pending"] = ref_dict(candidate)
    return Decision(st)


def tick(
    status: Mapping[str, Any] | None,
    cfg: RolloutConfig,
    obs: Observation,
    controls: Controls,
    now: datetime,
    conditions: Iterable[Mapping[str, Any]] | None = None,
) -> Decision:
    """Advance the rollout as far as these inputs allow. `conditions` is the current
    `status.conditions`; only conditions that differ come back as actions."""
    t = _Tick(working_copy(status), cfg, obs, controls, now)
    # Run to a fixed point (a step that passes enters the next one in the same tick), so a
    # second call with the same inputs finds nothing left to do.
    for _ in range(_MAX_TRANSITIONS):
        before = copy.deepcopy(t.st)
        t.run()
        if t.st == before:
            break
    return t.decision(conditions, desired_conditions)


@dataclasses.dataclass
class _Tick(Tick):
    cfg: RolloutConfig
    obs: Observation
    ctl: Controls
    now: datetime

    def run(self) -> None:
        phase = self.st.get("phase", "Idle")
        if phase in RESTING:
            return self._begin_pending()
        if phase in ("Promoting", "RollingBack"):
            return self._finish()
        if self.ctl.abort:
            return self._roll_back("Aborted", "spec.rollout.abort is true")
        if self.ctl.promote_now:
            if not self.obs.canary_ready:
                # Never route all traffic to a server that cannot answer.
                self.st["message"] = "promoteNow waits for the canary to become ready"
                return None
            return self._promote("spec.rollout.promoteNow is true")
        if phase == "WaitingForCanaryReady":
            if self.obs.canary_ready and not self.ctl.paused:
                self._enter_step(0)
            return None
        if phase == "Paused":
            return self._paused()
        if self.ctl.paused:
            self.st.update(phase="Paused", pauseReason="ManualPause")
            return self._event("RolloutPaused", "spec.rollout.paused is true; weight held")
        return self._progress()

    # --- transitions -------------------------------------------------------------------------
    def _begin_pending(self) -> None:
        pending = self.st.get("pending")
        if not pending:
            return
        if self.ctl.abort or self.ctl.promote_now:
            # Left over from the last rollout: they must not decide the next one unseen.
            self.st["message"] = (
                f"candidate {pending['version']} waits: set spec.rollout.abort and "
                "promoteNow to false to start its rollout"
            )
            return
        self.st = {
            "phase": "WaitingForCanaryReady",
            "stable": self.st["stable"],
            "candidate": pending,
            "started": iso(self.now),
            "stepIndex": -1,
            "weight": 0,
            "history": [],
            **{k: self.st[k] for k in ("resumeHandled",) if k in self.st},
        }
        self._event("RolloutStarted", f"canary {pending['version']} created; waiting for ready")

    def _enter_step(self, index: int) -> None:
        step = self.cfg.steps[index]
        self.st.update(
            phase="Progressing",
            pauseReason=None,
            stepIndex=index,
            weight=step.weight,
            stepStarted=iso(self.now),
            lastAnalysis=None,
        )
        self.st.pop("baseline", None)  # written by operators before counts came `since`
        n = len(self.cfg.steps)
        self._event("CanaryStepStarted", f"step {index + 1}/{n}: {step.weight}% to canary")

    def _paused(self) -> None:
        reason, i = self.st.get("pauseReason"), int(self.st.get("stepIndex", 0))
        if reason == "ManualPause" and not self.ctl.paused:
            self.st.update(phase="Progressing", pauseReason=None)
            self._event("RolloutResumed", "spec.rollout.paused is false; analysis continues")
        elif (
            reason in ("StepPause", "Inconclusive")
            and self._resume_requested()
            and not self.ctl.paused
        ):
            self.st["resumeHandled"] = self.ctl.resume
            self._next(i, f"step {i + 1} resumed by gqr.dev/resume={self.ctl.resume}")
        elif reason == "AwaitingPromotion" and self.cfg.auto_promote:
            self._promote("last step passed and autoPromote is true")

    def _resume_requested(self) -> bool:
        return bool(self.ctl.resume) and self.ctl.resume != self.st.get("resumeHandled")

    def _progress(self) -> None:
        stats = self.obs.stats
        if stats is None:
            return self._stats_outage()
        self.st["statsUnavailableSince"] = None
        if self.st.get("canaryReady", True) != self.obs.canary_ready:
            self.st["canaryReady"] = self.obs.canary_ready
            if not self.obs.canary_ready:
                self._event("CanaryNotReady", "canary pods not ready; holding", warning=True)
        if not self.obs.canary_ready:
            return
        since = counts_since(self.st)
        if since is None or not since <= stats.start <= self.now:
            # Counts that begin before the step hold traffic at another split (they were asked
            # for an earlier step, e.g. the one that passed in this tick; the next tick asks
            # from this step's start). Counts that begin after now hold nothing yet (the step's
            # first, partial minute). Never a baseline subtracted from cumulative window counts:
            # when old impressions left the window, such a step counted the whole window.
            return
        self._analyse(stats.stable, stats.canary)

    def _stats_outage(self) -> None:
        """Hold the weight while /v1/stats is unavailable; roll back once the outage outlasts
        max_stats_outage_seconds (a canary serving unmeasured traffic for good is worse)."""
        why = f" ({self.obs.stats_error})" if self.obs.stats_error else ""
        since = parse_iso(self.st.get("statsUnavailableSince"))
        if since is None:
            self.st["statsUnavailableSince"] = iso(self.now)
            msg = f"gateway /v1/stats unavailable{why}; holding the current weight"
            self._event("StatsUnavailable", msg, warning=True)
            return
        limit = self.cfg.max_stats_outage_seconds
        if limit and (self.now - since).total_seconds() >= limit:
            self.st["statsUnavailableSince"] = None
            self._roll_back(
                "RolledBack",
                f"gateway /v1/stats unavailable for {limit:g}s "
                f"(spec.rollout.analysis.maxStatsOutageSeconds){why}",
            )

    def _analyse(self, stable: ArmCounts, canary: ArmCounts) -> None:
        # min(): the spec may have lost steps since this one began.
        i = min(int(self.st["stepIndex"]), len(self.cfg.steps) - 1)
        step = self.cfg.steps[i]
        acfg = dataclasses.replace(
            self.cfg.analysis, min_impressions=step.min_impressions, horizon=step.max_impressions
        )
        result = analyse(stable, canary, acfg)
        if step.weight == 100:  # bake step: no stable traffic to compare with
            done = canary.impressions >= max(step.min_impressions, 1)
            reason = f"bake at 100%: {canary.impressions}/{step.min_impressions} impressions"
            result = dataclasses.replace(result, decision="pass" if done else "wait", reason=reason)
        self.st["lastAnalysis"] = {"time": iso(self.now), "step": i, **result.to_status()}
        if result.decision == "wait" and _at_limit(step, stable, canary):
            return self._inconclusive(i, result.reason)
        if result.decision == "wait":
            return
        event = "StepPassed" if result.decision == "pass" else "StepFailed"
        self._record(event, result.reason, result.to_status())
        if result.decision == "fail":
            return self._roll_back("RolledBack", result.reason)
        if step.pause:
            # A resume value set before this pause began does not count as a resume.
            self.st.update(phase="Paused", pauseReason="StepPause", resumeHandled=self.ctl.resume)
            msg = f"step {i + 1} passed; set a new gqr.dev/resume annotation value to go on"
            return self._event("CanaryStepPaused", f"{msg}: {result.reason}")
        self._event("CanaryStepPassed", result.reason)
        self._next(i, result.reason)

    def _inconclusive(self, i: int, reason: str) -> None:
        """Step i reached maxImpressions on both arms without a significant result."""
        step = self.cfg.steps[i]
        self.st["lastAnalysis"]["decision"] = "inconclusive"
        why = (
            f"step {i + 1} inconclusive at maxImpressions {step.max_impressions}: "
            f"{reason.removeprefix('inconclusive: ')}"
        )
        self._record("StepInconclusive", why, self.st["lastAnalysis"])
        then = {
            "fail": "rolling back (onInconclusive: fail)",
            "pause": "weight held (onInconclusive: pause); set a new gqr.dev/resume annotation "
            "value to go on, promoteNow to promote or abort to roll back",
            "pass": "going on (onInconclusive: pass)",
        }[self.cfg.on_inconclusive]
        self._event("CanaryStepInconclusive", f"{why}; {then}", warning=True)
        if self.cfg.on_inconclusive == "fail":
            self.st["rollbackCause"] = "Inconclusive"
            return self._roll_back("RolledBack", why)
        if self.cfg.on_inconclusive == "pause":
            self.st.update(
                phase="Paused", pauseReason="Inconclusive", resumeHandled=self.ctl.resume
            )
            return None
        return self._next(i, why)

    def _next(self, i: int, why: str) -> None:
        """After step i passed: the next step, or promotion (automatic or awaited)."""
        if i + 1 < len(self.cfg.steps):
            return self._enter_step(i + 1)
        if self.cfg.auto_promote:
            return self._promote(f"all steps passed: {why}")
        self.st.update(phase="Paused", pauseReason="AwaitingPromotion")
        self._event("AwaitingPromotion", f"all steps passed; set promoteNow: {why}")

    def _promote(self, why: str) -> None:
        cand = self.st["candidate"]["version"]
        self.st.update(phase="Promoting", phaseSince=iso(self.now), weight=100, message=why)
        self._record("Promoting", why)
        self._event("CanaryPromoting", f"routing 100% to {cand}: {why}")

    def _roll_back(self, outcome: str, why: str) -> None:
        stable = self.st["stable"]["version"]
        self.st.update(
            phase="RollingBack", outcome=outcome, phaseSince=iso(self.now), weight=0, message=why
        )
        self._record("RollingBack", why)
        self._event("CanaryRollingBack", f"routing 100% to {stable}: {why}", warning=True)

    def _finish(self) -> None:
        since = parse_iso(self.st.get("phaseSince")) or self.now
        if (self.now - since).total_seconds() < self.cfg.drain_seconds:
            return
        cand, stable = self.st["candidate"], self.st["stable"]
        if self.st["phase"] == "Promoting":
            self.st.update(phase="Promoted", stable=cand, previousStable=stable)
            self._event("CanaryPromoted", f"{cand['version']} is stable: {self.st['message']}")
        else:
            self.st["phase"] = self.st.get("outcome", "RolledBack")
            msg = f"{cand['version']} removed; {stable['version']} serves: {self.st['message']}"
            self._event(f"Canary{self.st['phase']}", msg, warning=True)
        self.st["finished"] = iso(self.now)
        self._record(self.st["phase"], self.st["message"])

    # --- helpers -----------------------------------------------------------------------------
    def _event(self, reason: str, message: str, warning: bool = False) -> None:
        self.actions.append(Event(reason, message, "Warning" if warning else "Normal"))

    def _record(self, event: str, reason: str, analysis: dict[str, Any] | None = None) -> None:
        entry = {
            "time": iso(self.now),
            "step": self.st.get("stepIndex"),
            "weight": self.st.get("weight"),
            "event": event,
            "reason": reason,
            **(analysis or {}),
        }
        self.st["history"] = [*self.st.get("history", []), entry][-_HISTORY_MAX:]


def _at_limit(step: Step, stable: ArmCounts, canary: ArmCounts) -> bool:
    """Both arms served the step's maxImpressions (never for a bake step or without a limit)."""
    n = step.max_impressions
    return bool(n) and step.weight < 100 and min(stable.impressions, canary.impressions) >= n
