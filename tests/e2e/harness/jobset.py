"""Stand-in for JobSet's controller (kubernetes-sigs/jobset v0.12.0), whose CRD the tests install
but whose Go binary (with its webhooks) does not run on the test control plane.

For each JobSet in the namespace, as JobSet's reconciler does (``pkg/controllers``): the headless
Service named after ``spec.network.subdomain`` (default: the JobSet's name) when DNS hostnames
are enabled, then the child Jobs ``<jobset>-<replicatedJob>-<index>`` of the current restart
attempt, each its replicated Job's template with JobSet's labels and annotations (name, uid,
replicated Job, restart attempt, job index, ...) on the Job and its pods, the pods' subdomain,
``suspend: false`` and a controller owner reference. The real Job controller then makes the
Indexed pods (their completion index annotation and hostname), kwok starts them and
``LocalKubelet`` runs them as local processes. When a child Job fails: with restarts left
(``spec.failurePolicy.maxRestarts``) the attempt's Jobs are deleted and recreated under the next
``status.restarts``; without, the JobSet gets ``Failed`` (reason ``ReachedMaxRestarts``, or
``FailedJobs`` without a failure policy, "(first failed job: <name>)" in the message) and
``terminalState: Failed``. When every Job of the attempt completed (``successPolicy`` All):
``Completed`` (reason ``AllJobsCompleted``) and ``terminalState: Completed``.

What differs from JobSet: no webhooks (nothing is defaulted: the operator writes every field
out), no ``successPolicy`` Any or target lists, no failure policy rules, startup policy,
dependsOn, exclusive placement, volume claim policies, in-place restarts or
``ttlSecondsAfterFinished``; ``replicatedJobsStatus`` holds only the counts.

Cluster network: rank 0's pod hostname (``<jobset>-<job>-0-0.<subdomain>``) resolves only in
cluster DNS, and every local process shares one network namespace, so :meth:`env_for` (for
``LocalKubelet(env_for=...)``) gives a worker ``127.0.0.1`` for a variable naming a pod hostname
of its JobSet and one free port per JobSet attempt for ``PET_MASTER_PORT`` / ``MASTER_PORT``.
"""

from __future__ import annotations

import copy
import socket
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tests.e2e.harness._poller import Poller

GROUP, VERSION, PLURAL = "jobset.x-k8s.io", "v1alpha2", "jobsets"
NAME_KEY = "jobset.sigs.k8s.io/jobset-name"
UID_KEY = "jobset.sigs.k8s.io/jobset-uid"
RJOB_KEY = "jobset.sigs.k8s.io/replicatedjob-name"
RJOB_REPLICAS_KEY = "jobset.sigs.k8s.io/replicatedjob-replicas"
JOB_INDEX_KEY = "jobset.sigs.k8s.io/job-index"
GLOBAL_INDEX_KEY = "jobset.sigs.k8s.io/job-global-index"
RESTARTS_KEY = "jobset.sigs.k8s.io/restart-attempt"
PORT_VARS = ("PET_MASTER_PORT", "MASTER_PORT")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _finished(job: Any) -> str | None:
    for cond in job.status.conditions or []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return str(cond.type)
    return None


class LocalJobSetController(Poller):
    """Reconciles the JobSets of one namespace (see the module docstring)."""

    name = "local-jobset-controller"

    def __init__(self, api_client: Any, namespace: str, *, poll_s: float = 0.5) -> None:
        from kubernetes import client

        super().__init__(poll_s)
        self.api_client = api_client
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self._ports: dict[tuple[str, int], int] = {}
        self._hosts: dict[str, str] = {}  # pod hostname (any form) -> JobSet name
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the loop

    def step(self) -> None:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        for js in listed.get("items", []):
            if not (js.get("status") or {}).get("terminalState"):
                self._reconcile(js)

    def _reconcile(self, js: dict[str, Any]) -> None:
        meta, spec = js["metadata"], js["spec"]
        name = meta["name"]
        status = js.get("status") or {}
        restarts = int(status.get("restarts") or 0)
        network = spec.get("network") or {}
        subdomain = network.get("subdomain") or name
        dns = bool(network.get("enableDNSHostnames"))
        if dns:
            self._headless_service(js, subdomain, bool(network.get("publishNotReadyAddresses")))
        jobs = self.batch.list_namespaced_job(
            self.namespace, label_selector=f"{NAME_KEY}={name}"
        ).items
        current = [j for j in jobs if (j.metadata.labels or {}).get(RESTARTS_KEY) == str(restarts)]
        if not current:
            if any(not j.metadata.deletion_timestamp for j in jobs):
                return  # the last attempt's Jobs are still going away
            self._create_jobs(js, restarts, subdomain if dns else None)
            return
        ends = {j.metadata.name: _finished(j) for j in current}
        self._counts(js, current)
        failed = sorted(n for n, end in ends.items() if end == "Failed")
        if failed:
            policy = spec.get("failurePolicy")
            left = policy is not None and restarts < int(policy.get("maxRestarts") or 0)
            if left:
                self.note(f"jobset {name}: job {failed[0]} failed: restart {restarts + 1}")
                for job in current:
                    self.batch.delete_namespaced_job(
                        job.metadata.name, self.namespace, propagation_policy="Background"
                    )
                counted = int(status.get("restartsCountTowardsMax") or 0) + 1
                self._status(name, {"restarts": restarts + 1, "restartsCountTowardsMax": counted})
                return
            reason, base = (
                ("ReachedMaxRestarts", "jobset failed due to reaching max number of restarts")
                if policy is not None
                else ("FailedJobs", "jobset failed due to one or more job failures")
            )
            message = f"{base} (first failed job: {failed[0]})"
            self.note(f"jobset {name}: Failed: {message}")
            self._terminal(name, "Failed", reason, message)
        elif len(ends) == self._expected_jobs(js) and all(e == "Complete" for e in ends.values()):
            self.note(f"jobset {name}: Completed")
            self._terminal(name, "Completed", "AllJobsCompleted", "jobset completed successfully")

    # ------------------------------------------------------------------ children

    @staticmethod
    def _expected_jobs(js: dict[str, Any]) -> int:
        return sum(int(r.get("replicas", 1)) for r in js["spec"]["replicatedJobs"])

    def _owner(self, js: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JobSet",
            "name": js["metadata"]["name"],
            "uid": js["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def _headless_service(self, js: dict[str, Any], subdomain: str, not_ready: bool) -> None:
        from kubernetes.client.rest import ApiException

        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": subdomain, "ownerReferences": [self._owner(js)]},
            "spec": {
                "clusterIP": "None",
                "selector": {NAME_KEY: js["metadata"]["name"]},
                "publishNotReadyAddresses": not_ready,
            },
        }
        try:
            self.core.create_namespaced_service(self.namespace, svc)
            self.note(f"jobset {js['metadata']['name']}: headless Service {subdomain}")
        except ApiException as exc:
            if exc.status != 409:
                raise

    def _create_jobs(self, js: dict[str, Any], restarts: int, subdomain: str | None) -> None:
        name = js["metadata"]["name"]
        global_index = 0
        for rjob in js["spec"]["replicatedJobs"]:
            replicas = int(rjob.get("replicas", 1))
            for index in range(replicas):
                job_name = f"{name}-{rjob['name']}-{index}"
                marks = {
                    NAME_KEY: name,
                    UID_KEY: js["metadata"]["uid"],
                    RJOB_KEY: rjob["name"],
                    RJOB_REPLICAS_KEY: str(replicas),
                    JOB_INDEX_KEY: str(index),
                    GLOBAL_INDEX_KEY: str(global_index),
                    RESTARTS_KEY: str(restarts),
                }
                template = copy.deepcopy(rjob["template"])
                job_meta = template.get("metadata") or {}
                job_spec = template["spec"]
                pod_meta = job_spec["template"].setdefault("metadata", {})
                for obj in (job_meta, pod_meta):
                    obj["labels"] = {**(obj.get("labels") or {}), **marks}
                    obj["annotations"] = {**(obj.get("annotations") or {}), **marks}
                if subdomain:
                    job_spec["template"]["spec"]["subdomain"] = subdomain
                    self._remember_hosts(name, job_name, subdomain, job_spec)
                job_spec["suspend"] = False
                job = {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {
                        "name": job_name,
                        "labels": job_meta["labels"],
                        "annotations": job_meta["annotations"],
                        "ownerReferences": [self._owner(js)],
                    },
                    "spec": job_spec,
                }
                self.batch.create_namespaced_job(self.namespace, job)
                self.note(f"jobset {name}: created job {job_name} (attempt {restarts})")
                global_index += 1

    def _remember_hosts(
        self, name: str, job_name: str, subdomain: str, job_spec: dict[str, Any]
    ) -> None:
        """Every name a pod of ``job_name`` is reachable by, in any search-path form."""
        ns = self.namespace
        with self._lock:
            for i in range(int(job_spec.get("parallelism") or 1)):
                host = f"{job_name}-{i}.{subdomain}"
                for form in (host, f"{host}.{ns}.svc", f"{host}.{ns}.svc.cluster.local"):
                    self._hosts[form] = name

    # ------------------------------------------------------------------ status

    def _counts(self, js: dict[str, Any], jobs: list[Any]) -> None:
        rows = []
        for rjob in js["spec"]["replicatedJobs"]:
            mine = [j for j in jobs if (j.metadata.labels or {}).get(RJOB_KEY) == rjob["name"]]
            ends = [_finished(j) for j in mine]
            rows.append(
                {
                    "name": rjob["name"],
                    "ready": sum(1 for j in mine if (j.status.ready or 0) > 0),
                    "succeeded": ends.count("Complete"),
                    "failed": ends.count("Failed"),
                    "active": sum(1 for e in ends if e is None),
                    "suspended": 0,
                }
            )
        if rows != (js.get("status") or {}).get("replicatedJobsStatus"):
            self._status(js["metadata"]["name"], {"replicatedJobsStatus": rows})

    def _terminal(self, name: str, state: str, reason: str, message: str) -> None:
        cond = {
            "type": state,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastTransitionTime": _now(),
        }
        self._status(name, {"terminalState": state, "conditions": [cond]})

    def _status(self, name: str, fields: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, PLURAL, name, {"status": dict(fields)}
        )

    # ------------------------------------------------------------------ cluster network

    def env_for(self, pod: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
        """For ``LocalKubelet(env_for=...)``: loopback for the pod hostnames of this pod's
        JobSet, one free port per JobSet attempt for the rendezvous port variables."""
        labels = pod["metadata"].get("labels") or {}
        name = labels.get(NAME_KEY)
        if not name:
            return {}
        attempt = int(labels.get(RESTARTS_KEY) or 0)
        out: dict[str, str] = {}
        with self._lock:
            for key, value in env.items():
                if self._hosts.get(value.lower().rstrip(".")) == name:
                    out[key] = "127.0.0.1"
                elif key in PORT_VARS:
                    port = self._ports.setdefault((name, attempt), _free_port())
                    out[key] = str(port)
        return out
