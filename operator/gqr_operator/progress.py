"""Drives the update pipeline and the canary rollout by one tick: observe, decide, act.

The decisions are the pure machines' (gqr_operator.pipeline, gqr_operator.rollout); their
inputs come from `gqr_operator.observe` (Job state and result, canary readiness, the gateway's
/v1/stats); this module runs the machines and carries out their actions. Routing and LLM
servers are not written here: they follow from `.status.rollout`, which the children sync
turns into manifests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from gqr_operator import pipeline as pipeline_machine
from gqr_operator import rollout as rollout_machine
from gqr_operator.actions import Action, CreateJob, Event, SetCondition, StartRollout, iso
from gqr_operator.children import INITIAL_VERSION, owner_reference
from gqr_operator.kube import ApiError, Kube
from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.observe import (
    StatsUnavailable,
    fetch_stats,
    llm_available,
    observe_step,
    stats_url,
)
from gqr_operator.pipeline.config import JobObservation, PipelineConfig
from gqr_operator.resources import jobs, jobset
from gqr_operator.resources.milvus import cor_collection, cor_prefix
from gqr_operator.rollout.analysis import AnalysisConfig
from gqr_operator.rollout.config import Controls, ModelRef, Observation, RolloutConfig, Step

RETRAIN_ANNOTATION = "gqr.dev/retrain"
RESUME_ANNOTATION = "gqr.dev/resume"


@dataclass
class Progress:
    """What one tick changed: status sections, conditions to set, Events to emit."""

    status: dict[str, Any] = field(default_factory=dict)
    conditions: list[SetCondition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def record(self, action: Action) -> None:
        """Keep a condition or an Event for the handler to write after the status."""
        if isinstance(action, SetCondition):
            self.conditions.append(action)
        elif isinstance(action, Event):
            self.events.append(action)


def stable_ref(spec: GQRDeploymentSpec, rollout: dict[str, Any]) -> ModelRef:
    entry = rollout.get("stable")
    if entry:
        return ModelRef(str(entry["version"]), str(entry.get("artifactUri", "")))
    return ModelRef(INITIAL_VERSION, spec.llm.model)


def bootstrapping(spec: GQRDeploymentSpec, stable: ModelRef) -> bool:
    """Whether a run starting now is a bootstrap run: spec.bootstrap is set and no fine-tuned
    model has been promoted (the stable version is still the spec's own model; the rollout
    machine records the candidate as stable at its promotion)."""
    return spec.bootstrap is not None and stable.version == INITIAL_VERSION


def rollout_config(spec: GQRDeploymentSpec) -> RolloutConfig:
    r = spec.rollout
    return RolloutConfig(
        steps=tuple(Step(s.weight, s.min_impressions, s.pause, s.max_impressions) for s in r.steps),
        analysis=AnalysisConfig(
            confidence=r.analysis.confidence,
            max_relative_drop=r.analysis.max_relative_drop,
            test=r.analysis.test,
        ),
        auto_promote=r.auto_promote,
        on_inconclusive=r.analysis.on_inconclusive,
        drain_seconds=float(r.drain_seconds),
        max_stats_outage_seconds=float(r.analysis.max_stats_outage_seconds),
    )


def advance(kube: Kube, body: dict[str, Any], spec: GQRDeploymentSpec, now: datetime) -> Progress:
    """One tick: the update pipeline, then the canary rollout (which may start this tick)."""
    status = body.get("status") or {}
    out = Progress()
    rollout_status = _advance_pipeline(kube, body, spec, now, out)
    _advance_rollout(kube, body, spec, now, rollout_status, out)
    out.status.update(
        _trained_artifacts(
            out.status["pipeline"],
            status,
            cor_prefix(body["metadata"]["name"], body["metadata"]["namespace"]),
        )
    )
    return out


def _advance_pipeline(
    kube: Kube, body: dict[str, Any], spec: GQRDeploymentSpec, now: datetime, out: Progress
) -> dict[str, Any]:
    """Tick the pipeline machine and carry out its actions; returns `status.rollout` with a
    candidate handed over when the run's gate passed."""
    meta, status = body["metadata"], body.get("status") or {}
    name, namespace = meta["name"], meta["namespace"]
    rollout_status = dict(status.get("rollout") or {})
    stable = stable_ref(spec, rollout_status)
    pipe_status = status.get("pipeline") or {}
    job = pipeline_machine.current_job(pipe_status)
    cfg = PipelineConfig(
        cr_name=name,
        base_model=stable.artifact_uri,
        schedule=spec.training.schedule,
        suspend=spec.training.suspend,
        min_aec_gain=spec.training.gate.min_aec_gain,
        failure_backoff_s=spec.training.failure_backoff_minutes * 60.0,
        max_consecutive_failures=spec.training.max_consecutive_failures,
        bootstrap=bootstrapping(spec, stable),
    )
    decision = pipeline_machine.tick(
        pipe_status,
        cfg,
        _observe(kube, namespace, spec, pipe_status, job),
        (meta.get("annotations") or {}).get(RETRAIN_ANNOTATION),
        now,
        status.get("conditions") or [],
    )
    out.status["pipeline"] = decision.status
    for action in decision.actions:
        if isinstance(action, CreateJob):
            manifest = jobset.build_step_workload(
                name,
                namespace,
                spec,
                step=cast(jobs.Step, action.step),
                run_id=action.run_id,
                inputs=action.inputs,
            )
            manifest["metadata"]["ownerReferences"] = [owner_reference(body)]
            _create(kube, manifest)
        elif isinstance(action, StartRollout):
            new = ModelRef(action.version, action.artifact_uri)
            rollout_status = rollout_machine.start(rollout_status, new, stable).status
        else:
            out.record(action)
    return rollout_status


def _observe(
    kube: Kube,
    namespace: str,
    spec: GQRDeploymentSpec,
    pipe_status: dict[str, Any],
    job: str | None,
) -> JobObservation | None:
    """The current step's Job or JobSet (None when no run is active)."""
    if not job:
        return None
    nodes = jobset.step_nodes(spec, str(pipe_status.get("currentStep")))
    return observe_step(kube, namespace, job, nodes)


def _create(kube: Kube, manifest: dict[str, Any]) -> None:
    """Create a step's workload. A JobSet the cluster has no API for is left uncreated: the
    next tick observes the step (`observe_step`) and fails it, naming what to install."""
    try:
        kube.create(manifest)
    except ApiError as exc:
        if not (exc.status == 404 and manifest["kind"] == jobset.KIND):
            raise


def _observe_rollout(
    kube: Kube, body: dict[str, Any], spec: GQRDeploymentSpec, rollout_status: dict[str, Any]
) -> Observation:
    """The candidate's readiness and, in the phases that may enter or resume a step within
    this tick, its step's counts (counts from before the step began are not analysed: the
    machine compares `start`)."""
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    candidate = (rollout_status.get("candidate") or {}).get("version")
    pending = (rollout_status.get("pending") or {}).get("version")
    serving = str(candidate or pending or "")
    ready = bool(serving) and llm_available(kube, namespace, name, serving)
    if not candidate or rollout_status.get("phase") not in (
        "WaitingForCanaryReady",
        "Progressing",
        "Paused",
    ):
        return Observation(ready, None, "")
    since = rollout_machine.counts_since(rollout_status)
    try:
        stats = fetch_stats(
            stats_url(name, namespace, spec),
            stable_ref(spec, rollout_status).version,
            candidate,
            iso(since) if since else None,
        )
    except StatsUnavailable as exc:
        return Observation(ready, None, str(exc))
    return Observation(ready, stats, "")


def _advance_rollout(
    kube: Kube,
    body: dict[str, Any],
    spec: GQRDeploymentSpec,
    now: datetime,
    rollout_status: dict[str, Any],
    out: Progress,
) -> None:
    """Tick the rollout machine on what `_observe_rollout` saw."""
    annotations = body["metadata"].get("annotations") or {}
    controls = Controls(
        paused=spec.rollout.paused,
        promote_now=spec.rollout.promote_now,
        abort=spec.rollout.abort,
        resume=annotations.get(RESUME_ANNOTATION),
    )
    decision = rollout_machine.tick(
        rollout_status,
        rollout_config(spec),
        _observe_rollout(kube, body, spec, rollout_status),
        controls,
        now,
        (body.get("status") or {}).get("conditions") or [],
    )
    out.status["rollout"] = decision.status
    for action in decision.actions:
        out.record(action)
    out.status.update(rollout_machine.summary(decision.status))


def _trained_artifacts(pipe: dict[str, Any], status: dict[str, Any], prefix: str) -> dict[str, Any]:
    """After a run whose training steps succeeded, serve its CTR predictor and COR index
    (they do not wait for the LLM's canary: the gate concerns the LLM only). `prefix`: this
    deployment's Milvus prefix, which cor-build was given."""
    if pipe.get("phase") not in ("Succeeded", "NotPromoted"):
        return {}
    results = {s["name"]: s.get("result") or {} for s in pipe.get("steps", [])}
    out: dict[str, Any] = {}
    ctr = results.get("ctr-train") or {}
    if ctr.get("artifactUri") and (status.get("ctr") or {}).get("storageUri") != ctr["artifactUri"]:
        auc = (ctr.get("metrics") or {}).get("auc")
        out["ctr"] = {"version": ctr.get("version"), "storageUri": ctr["artifactUri"]}
        if auc is not None:
            out["ctr"]["auc"] = auc
    cor = results.get("cor-build") or {}
    if cor.get("version") and (status.get("cor") or {}).get("version") != cor["version"]:
        out["cor"] = {
            "version": cor["version"],
            "collection": cor_collection(prefix, cor["version"]),
        }
    return out
