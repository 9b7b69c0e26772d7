"""A multi-node pipeline step as a JobSet (jobset.x-k8s.io/v1alpha2, kubernetes-sigs/jobset).

A step whose `nodes` is more than 1 (spec.training.ctr.nodes, spec.training.dpo.nodes,
spec.bootstrap.sft.nodes) runs as one JobSet instead of a Job: one replicated Job `node` of
`nodes` Indexed pods, each the step's own pod (`resources.jobs.build_pipeline_job`: the same
image, arguments, volumes, Secrets, placement and security context), its command run under
`torchrun`. The rendezvous is the one Kubeflow Trainer's torch plugin gives a TrainJob (which is
itself a JobSet): the `PET_*` variables torchrun reads its options from, the node rank from the
Job's completion index, the master address the stable hostname of pod 0 of the node Job under
the JobSet's headless Service (`<jobset>-node-0-0.<jobset>`).

Names: a JobSet's pod hostnames are `<jobset>-node-0-<index>`, so its name (the step's Job name,
`<deployment>-<step>-<run>`) must leave room for them within 63 characters: JobSet's webhook
refuses longer ones (`MAX_NAME`).

Failure: a failed pod fails its Job (backoffLimit 0: one rank cannot go on alone), and the
JobSet recreates all of them up to spec.training.backoffLimit times, then fails. The result is
the termination message of rank 0's pod (node index 0 of the latest attempt), read exactly as a
Job's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources import defaults, jobs

API_VERSION = "jobset.x-k8s.io/v1alpha2"
KIND = "JobSet"
REPLICATED_JOB = "node"
"""The one replicated Job's name (Trainer's is `node` too)."""
MASTER_PORT = 29500
"""torchrun's rendezvous port on rank 0's pod (Trainer's ContainerTrainerPort)."""
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""Annotation (and label) the Job controller gives each pod of an Indexed Job: its index."""
JOBSET_NAME = "jobset.sigs.k8s.io/jobset-name"
"""Label JobSet gives each child Job and pod: the JobSet's name."""
RESTART_ATTEMPT = "jobset.sigs.k8s.io/restart-attempt"
"""Label JobSet gives each child Job and pod: the JobSet restart the pod belongs to."""
TORCHRUN_ENV = (
    "PET_NNODES",
    "PET_NPROC_PER_NODE",
    "PET_NODE_RANK",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
)
"""torchrun reads each option from PET_<OPTION> when it is not given on its command line."""


def step_nodes(spec: GQRDeploymentSpec, step: str) -> int:
    """The machines `step` runs on (1 for the steps that have no `nodes`)."""
    if step == "ctr-train":
        return spec.training.ctr.nodes
    if step == "dpo-iterate":
        return spec.training.dpo.nodes
    if step == "sft" and spec.bootstrap is not None:
        return spec.bootstrap.sft.nodes
    return 1


MAX_NAME = 63 - len(f"-{REPLICATED_JOB}-0-0")
"""Longest JobSet name whose pod hostnames (`<jobset>-node-0-<index>`, index < 10) are valid."""


def coordinator_host(name: str) -> str:
    """Rank 0's hostname: `<jobset>-<replicated job>-<job index>-<pod index>.<subdomain>`."""
    return f"{name}-{REPLICATED_JOB}-0-0.{name}"


def _field(path: str) -> dict[str, Any]:
    return {"valueFrom": {"fieldRef": {"fieldPath": path}}}


def torchrun_env(name: str, nodes: int, procs_per_node: int) -> list[dict[str, Any]]:
    """The PET_* variables of every worker of JobSet `name`: the node rank from the downward API
    (the pod's completion index), the rest fixed."""
    return [
        {"name": "PET_NNODES", "value": str(nodes)},
        {"name": "PET_NPROC_PER_NODE", "value": str(procs_per_node)},
        {"name": "PET_NODE_RANK", **_field(f"metadata.annotations['{COMPLETION_INDEX}']")},
        {"name": "PET_MASTER_ADDR", "value": coordinator_host(name)},
        {"name": "PET_MASTER_PORT", "value": str(MASTER_PORT)},
    ]


def build_pipeline_jobset(job: dict[str, Any], nodes: int) -> dict[str, Any]:
    """The JobSet running the pipeline Job `job` (`jobs.build_pipeline_job`) on `nodes` pods.

    Everything a webhook would default is written out, so the JobSet behaves the same whether
    or not JobSet's defaulting webhook runs."""
    if nodes < 2:
        raise ValueError(f"a JobSet step needs at least 2 nodes (got {nodes})")
    job = copy.deepcopy(job)
    meta, spec = job["metadata"], job["spec"]
    template = spec["template"]
    pod = template["spec"]
    (container,) = pod["containers"]
    gpus = defaults.gpu_count(container.get("resources") or {})
    # `torchrun --no-python -- gqr <step> <args>`: torchrun starts the step's own console script
    # once per local process, with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
    # `--` ends torchrun's options: without it, torchrun reads the step's own flags as
    # abbreviations of its own (`--logs` -> `--logs-specs`) and exits 2.
    # The process count per node comes from PET_NPROC_PER_NODE, so a single-node launcher
    # (several GPUs in one pod) is replaced, not nested.
    step_cmd = jobs.without_launcher(container["command"])
    container["command"] = ["torchrun", "--no-python", "--", *step_cmd]
    env = torchrun_env(meta["name"], nodes, max(1, gpus))
    container["env"] = [*container.get("env", []), *env]
    container["ports"] = [{"name": "torchrun", "containerPort": MASTER_PORT, "protocol": "TCP"}]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": copy.deepcopy(meta),
        "spec": {
            # Pods reach rank 0 as <jobset>-node-0-0.<jobset> through a headless Service.
            "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
            "successPolicy": {"operator": "All"},
            # A failed rank fails its Job; the JobSet restarts every pod together.
            "failurePolicy": {"maxRestarts": spec["backoffLimit"]},
            "startupPolicy": {"startupPolicyOrder": "AnyOrder"},
            "ttlSecondsAfterFinished": spec["ttlSecondsAfterFinished"],
            "replicatedJobs": [
                {
                    "name": REPLICATED_JOB,
                    "replicas": 1,
                    "template": {
                        "metadata": {"labels": dict(meta.get("labels") or {})},
                        "spec": {
                            "completionMode": "Indexed",
                            "completions": nodes,
                            "parallelism": nodes,
                            "backoffLimit": 0,
                            "activeDeadlineSeconds": spec["activeDeadlineSeconds"],
                            "template": template,
                        },
                    },
                }
            ],
        },
    }


def build_step_workload(
    name: str,
    namespace: str,
    spec: GQRDeploymentSpec,
    *,
    step: jobs.Step,
    run_id: str,
    inputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The workload of one pipeline step: its Job, or the JobSet of a step on several nodes.
    Both carry the same name (`jobs.job_name`), so a run's status names either."""
    job = jobs.build_pipeline_job(name, namespace, spec, step=step, run_id=run_id, inputs=inputs)
    nodes = step_nodes(spec, step)
    return job if nodes == 1 else build_pipeline_jobset(job, nodes)
