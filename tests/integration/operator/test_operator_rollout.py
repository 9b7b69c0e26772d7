"""The update pipeline and the canary rollout against the real apiserver, with the operator as a
real process (`gqr-operator`) that is SIGKILLed and restarted at every phase.

Job pods are completed by the test with a termination-message result, as a trainer container
would (no container runs here; kwok leaves pods labelled testenv.gqr.dev/complete=manual to us).
A small real HTTP server plays the gateway's /v1/stats.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client
from tests.kube_helpers import GROUP, PLURAL, VERSION, OperatorProcess, gqrdeployment, wait_for
from testsupport.http_function import FunctionServer, Reply, json_reply

NAME = "followup"
CANDIDATE = "run1-dpo"


class StatsServer:
    """GET /v1/stats as the gateway answers it: the counts since `since` (the operator asks from
    the step's start) and `start`. The test sets cumulative totals; the server answers the
    latest totals minus those it had at `since`."""

    def __init__(self) -> None:
        zero = {"stable": (0, 0), "canary": (0, 0)}
        self.totals: list[tuple[float, dict[str, tuple[int, int]]]] = [(0.0, zero)]
        self.hits = 0
        self.down = False
        self.http = FunctionServer(self._answer)
        self.url = f"{self.http.url}/v1/stats"

    def _answer(self, method: str, path: str, body: bytes) -> Reply:
        self.hits += 1
        if self.down:
            return json_reply({"error": "unavailable"}, status=503)
        since = parse_qs(urlsplit(path).query).get("since", [None])[0]
        start = datetime.fromisoformat(since).timestamp() if since else 0.0
        return json_reply({"arms": self.rows(start), "start": start})

    def set(self, stable: tuple[int, int], canary: tuple[int, int]) -> None:
        """Cumulative totals from now on (impressions, clicked impressions) per arm."""
        self.totals.append((time.time(), {"stable": stable, "canary": canary}))

    def rows(self, start: float) -> list[dict[str, Any]]:
        now = self.totals[-1][1]
        then = [t for at, t in self.totals if at <= start][-1]
        return [
            {
                "arm": arm,
                "model_version": version,
                "impressions": now[arm][0] - then[arm][0],
                "clicks": now[arm][1] - then[arm][1],
            }
            for arm, version in (("stable", "initial"), ("canary", CANDIDATE))
        ]

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def stats() -> Iterator[StatsServer]:
    server = StatsServer()
    yield server
    server.close()


@pytest.fixture
def operator_process(
    crds: list[str], testenv: Any, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    op = OperatorProcess(namespace, testenv.kubeconfig, tmp_path / "operator.log")
    op.start()
    yield op
    op.stop()
    print(op.log.read_text(errors="replace")[-4000:])


def _doc(stats_url: str) -> dict[str, Any]:
    return gqrdeployment(
        NAME,
        {
            "task": {"type": "suggestion", "numQueries": 3},
            "llm": {"model": "hf://gqr/tiny-sft"},
            "logs": {"uri": "s3://logs/followup"},
            "artifacts": {"uri": "s3://artifacts/followup"},
            "training": {
                "podLabels": {"testenv.gqr.dev/complete": "manual"},
                "gate": {"minAecGain": 0.01},
                "dpo": {"lora": True},
            },
            "rollout": {
                "steps": [
                    {"weight": 20, "minImpressions": 5000},
                    {"weight": 50, "minImpressions": 5000},
                ],
                "analysis": {
                    "statsUrl": stats_url,
                    "confidence": 0.95,
                    "maxRelativeDrop": 0.05,
                    "maxStatsOutageSeconds": 8,
                },
                "drainSeconds": 0,
            },
        },
    )


def _result(step: str) -> str:
    metrics: dict[str, float] = {"pairs": 1200.0} if step == "cor-build" else {"auc": 0.71}
    if step == "dpo-iterate":
        metrics = {"aec": 0.21, "aec_stable": 0.11, "true_ctr": 0.19}
    version = {"cor-build": "run1-cor", "ctr-train": "run1-ctr", "dpo-iterate": CANDIDATE}[step]
    return json.dumps(
        {
            "schema_version": 1,
            "kind": "job_result",
            "job": step,
            "status": "succeeded",
            "version": version,
            "artifact_uri": f"s3://artifacts/followup/{step}/{version}",
            "metrics": metrics,
        }
    )


class Cluster:
    def __init__(self, kube_client: Any, namespace: str) -> None:
        self.ns = namespace
        self.api = client.CustomObjectsApi(kube_client)
        self.core = client.CoreV1Api(kube_client)
        self.batch = client.BatchV1Api(kube_client)
        self.apps = client.AppsV1Api(kube_client)

    def status(self) -> dict[str, Any]:
        obj = self.api.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, NAME)
        return dict(obj.get("status") or {})

    def annotate(self, key: str, value: str) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, NAME, {"metadata": {"annotations": {key: value}}}
        )

    def jobs(self) -> list[str]:
        return sorted(j.metadata.name for j in self.batch.list_namespaced_job(self.ns).items)

    def complete_job_pod(self, job: str, message: str) -> None:
        """What a trainer container does: exit 0 with its result as termination message."""
        pod = wait_for(
            lambda: next(
                iter(
                    self.core.list_namespaced_pod(self.ns, label_selector=f"job-name={job}").items
                ),
                None,
            ),
            f"the pod of Job {job}",
            timeout=30,
        )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        container = pod.spec.containers[0]
        status = {
            "phase": "Succeeded",
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [
                {
                    "name": container.name,
                    "image": container.image,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "message": message,
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }
            ],
        }
        self.core.patch_namespaced_pod_status(pod.metadata.name, self.ns, {"status": status})

    def routing(self) -> dict[str, Any]:
        cm = self.core.read_namespaced_config_map(f"{NAME}-routing", self.ns)
        return dict(json.loads(next(iter(cm.data.values()))))

    def llm_deployments(self) -> set[str]:
        items = self.apps.list_namespaced_deployment(
            self.ns, label_selector="app.kubernetes.io/component=llm"
        ).items
        return {d.metadata.name for d in items}

    def events(self) -> list[str]:
        return [e.reason for e in self.core.list_namespaced_event(self.ns).items]


def _until(cluster: Cluster, what: str, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        st = cluster.status()
        return st if pred(st) else None

    try:
        return wait_for(check, what, timeout=60)
    except AssertionError as exc:
        st = cluster.status()
        detail = {k: st.get(k) for k in ("phase", "pipeline", "rollout", "conditions")}
        raise AssertionError(f"{exc}\nstatus: {json.dumps(detail, indent=1)[:6000]}") from None


def _into_the_step(cluster: Cluster) -> None:
    """Wait until traffic set now falls after the current step's start (the operator counts
    from the second after `stepStarted`, which is cut to the second)."""
    started = datetime.fromisoformat(cluster.status()["rollout"]["stepStarted"]).timestamp()
    time.sleep(max(0.0, started + 1.5 - time.time()))


def _pipeline_to_canary(
    op: OperatorProcess, kube_client: Any, namespace: str, stats: StatsServer
) -> Cluster:
    """The GQRDeployment applied (no traffic yet), then annotation -> three Jobs -> gate ->
    canary at the first step, killing the operator at every phase boundary."""
    cluster = Cluster(kube_client, namespace)
    cluster.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _doc(stats.url))
    stats.set((0, 0), (0, 0))
    _until(cluster, "the first reconcile", lambda s: bool(s.get("conditions")))
    op.restart()  # 1: idle, before the trigger
    cluster.annotate("gqr.dev/retrain", "run-1")
    for step in ("cor-build", "ctr-train", "dpo-iterate"):
        job = f"{NAME}-{step}-1"
        wait_for(lambda j=job: j in cluster.jobs(), f"Job {job}", timeout=60)
        op.restart()  # 2, 4, 6: a Job was created and is running
        cluster.complete_job_pod(job, _result(step))
        _until(
            cluster,
            f"{step} recorded as Succeeded",
            lambda s, st=step: any(
                x["name"] == st and x.get("state") == "Succeeded"
                for x in (s.get("pipeline") or {}).get("steps", [])
            ),
        )
        op.restart()  # 3, 5, 7: a step's result was recorded
    _until(
        cluster,
        "the canary to reach its first step",
        lambda s: (s.get("rollout") or {}).get("phase") == "Progressing",
    )
    op.restart()  # 8: canary progressing at step 1
    assert cluster.routing()["arms"][1]["weight"] == 20
    return cluster


def _only_server(cluster: Cluster, version: str, what: str) -> None:
    """Wait until `version`'s LLM server is the only one left; the routing sends it all."""
    wait_for(lambda: cluster.llm_deployments() == {f"{NAME}-llm-{version}"}, what, timeout=30)
    arms = [(a["name"], a["model_version"], a["weight"]) for a in cluster.routing()["arms"]]
    assert arms == [("stable", version, 100)]


def test_pipeline_then_canary_promoted_across_operator_kills(
    operator_process: OperatorProcess, kube_client: Any, namespace: str, stats: StatsServer
) -> None:
    cluster = _pipeline_to_canary(operator_process, kube_client, namespace, stats)
    st = cluster.status()
    assert st["pipeline"]["phase"] == "Succeeded"
    assert st["pipeline"]["gate"]["passed"] is True
    assert st["ctr"]["storageUri"].endswith("run1-ctr") and st["cor"]["version"] == "run1-cor"
    assert cluster.llm_deployments() == {f"{NAME}-llm-initial", f"{NAME}-llm-{CANDIDATE}"}

    # Step 1: canary clearly better (7.5% vs 5%) -> step 2 at 50%.
    _into_the_step(cluster)
    stats.set((40000, 2000), (12000, 900))
    _until(cluster, "step 2", lambda s: (s.get("rollout") or {}).get("weight") == 50)
    operator_process.restart()  # 9: at step 2, before its analysis
    # Step 2 counts from its own start: the 40000 of step 1 are not in its analysis.
    assert ((cluster.status()["rollout"].get("lastAnalysis") or {}).get("stable") or {}).get(
        "impressions", 0
    ) == 0
    _into_the_step(cluster)
    stats.set((60000, 3000), (32000, 2400))  # +20000 impressions per arm at step 2
    final = _until(
        cluster, "promotion", lambda s: (s.get("rollout") or {}).get("phase") == "Promoted"
    )
    operator_process.restart()  # 10: after promotion
    assert final["stable"]["version"] == CANDIDATE
    _only_server(cluster, CANDIDATE, "the old stable server to be removed")
    history = final["rollout"]["history"]
    assert any(h.get("decision") == "pass" for h in history)
    last = final["rollout"]["lastAnalysis"]
    assert last["canaryCtr"] > last["stableCtr"]  # the measured lift is in status
    assert last["stable"]["impressions"] == last["canary"]["impressions"] == 20000  # step 2's
    # No duplicates although the operator was killed at every phase.
    assert cluster.jobs() == sorted(
        f"{NAME}-{s}-1" for s in ("cor-build", "ctr-train", "dpo-iterate")
    )
    assert operator_process.kills >= 8
    assert {"Promoted"} & set(cluster.events()) or any("romot" in r for r in cluster.events())


def test_worse_canary_is_rolled_back_and_stable_keeps_serving(
    operator_process: OperatorProcess, kube_client: Any, namespace: str, stats: StatsServer
) -> None:
    cluster = _pipeline_to_canary(operator_process, kube_client, namespace, stats)
    _into_the_step(cluster)
    stats.set((40000, 2400), (12000, 360))  # canary 3% vs stable 6%
    final = _until(
        cluster,
        "rollback",
        lambda s: (s.get("rollout") or {}).get("phase") in ("RolledBack", "Aborted"),
    )
    assert final["rollout"]["phase"] == "RolledBack"
    assert final["stable"]["version"] == "initial"
    conds = {c["type"]: c for c in final["conditions"]}
    assert (
        conds["Degraded"]["status"] == "True" and conds["Degraded"]["reason"] == "CanaryRolledBack"
    )
    assert "3.0" in conds["Degraded"]["message"] or "0.03" in conds["Degraded"]["message"]
    _only_server(cluster, "initial", "the canary server to be removed")


def test_a_stats_outage_past_its_limit_rolls_back(
    operator_process: OperatorProcess, kube_client: Any, namespace: str, stats: StatsServer
) -> None:
    """The gateway's /v1/stats goes away during a step: the weight is held, then, past
    maxStatsOutageSeconds (8 s here), the canary is rolled back and stable serves alone."""
    cluster = _pipeline_to_canary(operator_process, kube_client, namespace, stats)
    stats.down = True
    noticed = _until(
        cluster,
        "the outage noticed",
        lambda s: bool((s.get("rollout") or {}).get("statsUnavailableSince")),
    )
    assert noticed["rollout"]["phase"] == "Progressing" and noticed["rollout"]["weight"] == 20
    final = _until(
        cluster, "rollback", lambda s: (s.get("rollout") or {}).get("phase") == "RolledBack"
    )
    assert "maxStatsOutageSeconds" in final["rollout"]["message"]
    _only_server(cluster, "initial", "the canary server to be removed")
