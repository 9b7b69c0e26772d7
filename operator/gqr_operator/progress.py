"""Drives the update pipeline and the canary rollout by one tick: observe, decide, act.

The decisions are the pure machines' (gqr_operator.pipeline, gqr_operator.rollout); this module
only gathers their inputs (Job state and termination message, canary readiness, the gateway's
/v1/stats) and carries out their actions. Routing and LLM servers are not written here: they
follow from `.status.rollout`, which the children sync turns into manifests.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from gqr_operator import pipeline as pipeline_machine
from gqr_operator import rollout as rollout_machine
from gqr_operator.children import INITIAL_VERSION, owner_reference
from gqr_operator.kube import KINDS, Kube
from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.pipeline.config import JobObservation, PipelineConfig
from gqr_operator.resources import gateway, jobs
from gqr_operator.resources.llm import llm_name
from gqr_operator.resources.milvus import cor_collection, cor_prefix
from gqr_operator.rollout.actions import (
    CreateJob,
    Event,
    SetCondition,
    StartRollout,
    iso,
)
from gqr_operator.rollout.analysis import AnalysisConfig, ArmCounts
from gqr_operator.rollout.config import (
    Controls,
    ModelRef,
    Observation,
    RolloutConfig,
    Stats,
    Step,
)
from gqr_operator.rollout.status import ACTIVE

log = logging.getLogger(__name__)
RETRAIN_ANNOTATION = "gqr.dev/retrain"
RESUME_ANNOTATION = "gqr.dev/resume"
JOB = KINDS[("batch/v1", "Job")]
POD = KINDS[("v1", "Pod")]
DEPLOYMENT = KINDS[("apps/v1", "Deployment")]


@dataclass
class Progress:
    """What one tick changed: status sections, conditions to set, Events to emit."""

    status: dict[str, Any] = field(default_factory=dict)
    conditions: list[SetCondition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def stable_ref(spec: GQRDeploymentSpec, rollout: dict[str, Any]) -> ModelRef:
    entry = rollout.get("stable")
    if entry:
        return ModelRef(str(entry["version"]), str(entry.get("artifactUri", "")))
    return ModelRef(INITIAL_VERSION, spec.llm.model)


def observe_job(kube: Kube, namespace: str, name: str) -> JobObservation:
    """The Job's state and, when it finished, its pod's termination message."""
    job = kube.get(JOB, namespace, name)
    if job is None:
        return JobObservation("absent")
    conds = {c["type"]: c for c in (job.get("status") or {}).get("conditions") or []}
    done = conds.get("Complete", {}).get("status") == "True"
    failed = conds.get("Failed", {}).get("status") == "True"
    if not (done or failed):
        return JobObservation("active")
    message = None
    for pod in kube.list(POD, namespace, f"job-name={name}"):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((cs.get("state") or {}).get("terminated") or {}).get("message") or message
    if failed:
        why = f"{conds['Failed'].get('reason', '')}: {conds['Failed'].get('message', '')}"
        return JobObservation("failed", message, why.strip(": "))
    return JobObservation("succeeded", message)


def stats_url(name: str, namespace: str, spec: GQRDeploymentSpec) -> str:
    if spec.rollout.analysis.stats_url:
        return spec.rollout.analysis.stats_url
    # The gateway's longest window (14 days): with `since` = the step's start, the counts are
    # the step's own until a step outlasts it.
    host = f"{gateway.gateway_name(name)}.{namespace}.svc.cluster.local"
    return f"http://{host}/v1/stats?window=14d"


class StatsUnavailable(Exception):
    """The stats endpoint could not be read, or its answer cannot be attributed to a step."""


def parse_stats(doc: Any, stable: str, canary: str) -> Stats:
    """Counts per arm from /v1/stats?since=...: rows of {arm, model_version, impressions,
    clicks, clicked_impressions} under "arms", and ``start``, the Unix time counting began.
    Only rows of the versions under test count. A success is an impression with at least one
    click (``clicked_impressions``, the list CTR the analysis tests as a Bernoulli rate); rows
    without it fall back to ``clicks``. An answer without ``start`` comes from an endpoint that
    ignores ``since`` (a gateway before it was added): its counts may hold traffic from before
    the step, so they are refused."""
    start = doc.get("start") if isinstance(doc, dict) else None
    if isinstance(start, bool) or not isinstance(start, int | float) or not 0 <= start < 1e11:
        raise StatsUnavailable(
            "the answer has no `start`: the endpoint ignores `since`, so its counts cannot be "
            "limited to the step; upgrade the gateway (or the statsUrl service)"
        )
    rows = doc.get("arms", doc.get("rows", []))
    if isinstance(rows, dict):  # {"stable": {...}, "canary": {...}}
        rows = [{"arm": k, **v} for k, v in rows.items()]
    totals = {"stable": [0, 0], "canary": [0, 0]}
    for row in rows or []:
        arm = row.get("arm")
        version = row.get("model_version", row.get("version"))
        want = stable if arm == "stable" else canary if arm == "canary" else None
        if want is None or (version is not None and str(version) != want):
            continue
        totals[arm][0] += int(row.get("impressions", 0))
        totals[arm][1] += int(row.get("clicked_impressions", row.get("clicks", 0)))
    when = datetime.fromtimestamp(float(start), UTC)
    return Stats(ArmCounts(*totals["stable"]), ArmCounts(*totals["canary"]), when)


def fetch_stats(url: str, stable: str, canary: str, since: str | None) -> Stats:
    """Counts since `since` (the step's start, ISO 8601; None before a step: the window);
    `since` joins the URL's own query. Raises StatsUnavailable when the gateway cannot be
    reached or answers garbage (the rollout then holds)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "since"]
    if since:
        query.append(("since", since))
    full = urlunsplit(parts._replace(query=urlencode(query)))
    try:
        resp = httpx.get(full, timeout=3.0)
        resp.raise_for_status()
        return parse_stats(resp.json(), stable, canary)
    except StatsUnavailable as exc:
        log.warning("stats from %s refused: %s", full, exc)
        raise
    except (
        httpx.HTTPError,
        ValueError,
        TypeError,
        AttributeError,
        json.JSONDecodeError,
    ) as exc:
        log.warning("stats from %s unavailable: %s", full, exc)
        raise StatsUnavailable(f"{type(exc).__name__}: {exc}"[:200]) from exc


def _iso(t: datetime | None) -> str | None:
    return iso(t) if t else None


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
    )


def _available(obj: dict[str, Any] | None) -> bool:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conds)


def advance(kube: Kube, body: dict[str, Any], spec: GQRDeploymentSpec, now: datetime) -> Progress:
    meta, status = body["metadata"], body.get("status") or {}
    name, namespace = meta["name"], meta["namespace"]
    annotations = meta.get("annotations") or {}
    conds = status.get("conditions") or []
    out = Progress()
    rollout_status = dict(status.get("rollout") or {})
    stable = stable_ref(spec, rollout_status)

    # The update pipeline.
    pipe_status = status.get("pipeline") or {}
    job = pipeline_machine.current_job(pipe_status)
    cfg = PipelineConfig(
        cr_name=name,
        base_model=stable.artifact_uri,
        schedule=spec.training.schedule,
        suspend=spec.training.suspend,
        min_aec_gain=spec.training.gate.min_aec_gain,
    )
    decision = pipeline_machine.tick(
        pipe_status,
        cfg,
        observe_job(kube, namespace, job) if job else None,
        annotations.get(RETRAIN_ANNOTATION),
        now,
        conds,
    )
    out.status["pipeline"] = decision.status
    for action in decision.actions:
        if isinstance(action, CreateJob):
            manifest = jobs.build_pipeline_job(
                name,
                namespace,
                spec,
                step=cast(jobs.Step, action.step),
                run_id=action.run_id,
                inputs=action.inputs,
            )
            manifest["metadata"]["ownerReferences"] = [owner_reference(body)]
            kube.create(manifest)
        elif isinstance(action, StartRollout):
            new = ModelRef(action.version, action.artifact_uri)
            rollout_status = rollout_machine.start(rollout_status, new, stable).status
        elif isinstance(action, SetCondition):
            out.conditions.append(action)
        elif isinstance(action, Event):
            out.events.append(action)
    out.status.update(_trained_artifacts(decision.status, status, cor_prefix(name, namespace)))

    # The canary rollout.
    candidate = (rollout_status.get("candidate") or {}).get("version")
    active = rollout_status.get("phase") in ACTIVE or rollout_status.get("pending")
    stats, stats_error = None, ""
    ready = False
    if candidate or active:
        cand = candidate or (rollout_status.get("pending") or {}).get("version")
        if cand:
            ready = _available(kube.get(DEPLOYMENT, namespace, llm_name(name, cand)))
        # Also in the phases that may enter or resume a step within this tick; counts from
        # before the step began are not analysed (the machine compares `start`).
        if candidate and rollout_status.get("phase") in (
            "WaitingForCanaryReady",
            "Progressing",
            "Paused",
        ):
            try:
                stats = fetch_stats(
                    stats_url(name, namespace, spec),
                    stable.version,
                    candidate,
                    _iso(rollout_machine.counts_since(rollout_status)),
                )
            except StatsUnavailable as exc:
                stats_error = str(exc)
    controls = Controls(
        paused=spec.rollout.paused,
        promote_now=spec.rollout.promote_now,
        abort=spec.rollout.abort,
        resume=annotations.get(RESUME_ANNOTATION),
    )
    decision = rollout_machine.tick(
        rollout_status,
        rollout_config(spec),
        Observation(ready, stats, stats_error),
        controls,
        now,
        conds,
    )
    out.status["rollout"] = decision.status
    for action in decision.actions:
        if isinstance(action, SetCondition):
            out.conditions.append(action)
        elif isinstance(action, Event):
            out.events.append(action)
    out.status.update(rollout_machine.summary(decision.status))
    return out


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
