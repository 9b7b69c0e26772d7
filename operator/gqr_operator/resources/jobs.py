"""Pipeline Jobs: cor-build -> ctr-train -> dpo-iterate. Each writes its result JSON
(artifact URI + metrics) to /dev/termination-log for the operator to read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources import defaults
from gqr_operator.resources.milvus import cor_prefix, milvus_uri
from gqr_operator.resources.naming import (
    RUN_LABEL,
    STEP_LABEL,
    child_name,
    label_value,
    labels,
    metadata,
    selector_labels,
)
from gqr_operator.resources.output_filter import output_filter_args
from gqr_operator.resources.storage import (
    WORK_DIR,
    Mounts,
    is_remote,
    storage_uri,
    store_env,
    store_secrets,
)

Step = Literal["cor-build", "ctr-train", "dpo-iterate"]
STEPS: tuple[Step, ...] = ("cor-build", "ctr-train", "dpo-iterate")
RESULT_PATH = "/dev/termination-log"
DPO_INPUTS = ("base_model", "ctr_uri", "cor_uri")


def job_name(cr_name: str, step: Step, run_id: str) -> str:
    """Name of one step's Job in one run; the same run never gets a second Job."""
    return child_name(cr_name, step, run_id)


def _flags(pairs: Mapping[str, object]) -> list[str]:
    """`--flag value` pairs in order."""
    return [text for flag, value in pairs.items() for text in (flag, str(value))]


def _cor_build_args(
    name: str, namespace: str, spec: GQRDeploymentSpec, logs: str, out: str
) -> list[str]:
    return [
        *_flags(
            {
                "--source": "logstore",
                "--input": logs,
                "--window-days": spec.training.cor.window_days,
                "--min-count": spec.cooccurrence.min_cooccurring,
                "--artifact-root": out,
            }
        ),
        "--index",
        *_flags(
            {
                "--milvus-uri": milvus_uri(name, namespace, spec),
                "--collection-prefix": cor_prefix(name, namespace),
            }
        ),
    ]


def _ctr_train_args(spec: GQRDeploymentSpec, logs: str, out: str, mounts: Mounts) -> list[str]:
    t = spec.training
    pretrained = spec.ctr_predictor.pretrained
    start = ["--pretrained", storage_uri(pretrained, mounts, read_only=True)] if pretrained else []
    return [
        *start,
        *_flags(
            {
                "--logs": logs,
                "--out": f"{out}/ctr",
                "--window-days": t.ctr.window_days,
                "--epochs": t.ctr.epochs,
                "--backbone": spec.ctr_predictor.backbone,
                "--variant": spec.ctr_predictor.variant,
            }
        ),
        "--resume",  # a retried pod continues from the last epoch's checkpoint
    ]


def _dpo_args(
    spec: GQRDeploymentSpec,
    run_id: str,
    inputs: Mapping[str, str],
    mounts: Mounts,
    logs: str,
    out: str,
) -> list[str]:
    missing = [k for k in DPO_INPUTS if not inputs.get(k)]
    if missing:
        raise ValueError(f"dpo-iterate needs inputs {missing} (accepted keys: {DPO_INPUTS})")
    t, d = spec.training, spec.training.dpo
    args = _flags(
        {
            "--model": storage_uri(inputs["base_model"], mounts, read_only=True),
            "--ctr": storage_uri(inputs["ctr_uri"], mounts, read_only=True),
            "--logs": logs,
            "--window-days": t.ctr.window_days,
            "--cor": out,
            # as many co-occurring queries as the gateway puts in served prompts
            "--cor-k": spec.cooccurrence.neighbours,
            "--task": spec.task.type,
            "--beta": d.beta,
            "--delta": d.delta,
            "--max-iterations": d.max_iterations,
            "--beam-size": d.beam_size,
            "--candidates": d.candidates,
            "--prompts-per-iteration": d.prompts_per_iteration,
            # the AEC gate evaluates the test set decoded as the gateway will serve it
            "--eval-temperature": spec.llm.decoding.temperature,
            "--eval-top-p": spec.llm.decoding.top_p,
        }
    )
    # Built in a work folder (next to the versions on a claim: a retried pod resumes, and the
    # model moves in by rename), published whole as <artifacts>/llm/<run>.
    remote = is_remote(spec.artifacts.uri)
    work = f"{WORK_DIR}/llm-{run_id}" if remote else f"{out}/llm/.work/{run_id}"
    return [
        *args,
        *(["--lora"] if d.lora else []),
        # the gateway's output filter: what it would not serve is never a chosen response
        *output_filter_args(spec, mounts),
        *_flags({"--out": work, "--publish": f"{out}/llm"}),
    ]


def _args(
    name: str,
    namespace: str,
    spec: GQRDeploymentSpec,
    step: Step,
    run_id: str,
    inputs: Mapping[str, str],
    mounts: Mounts,
    gpus: int = 0,
) -> list[str]:
    """The real entrypoints' own flags (`gqr <step> --help`); every step writes its JobResult to
    the termination-message file and names its artifact after the run."""
    logs = storage_uri(spec.logs.uri, mounts, read_only=True)
    out = storage_uri(spec.artifacts.uri, mounts).rstrip("/")
    common = ["--version", run_id, "--result-file", RESULT_PATH, "--no-progress"]
    device = ["--device", "cuda" if gpus else "cpu"]
    if step == "cor-build":
        return [*_cor_build_args(name, namespace, spec, logs, out), *common]
    if step == "ctr-train":
        return [*_ctr_train_args(spec, logs, out, mounts), *device, *common]
    dpo = _dpo_args(spec, run_id, inputs, mounts, logs, out)
    return [*dpo, *device, *(["--bf16"] if gpus else []), *common]


def build_pipeline_job(
    name: str,
    namespace: str,
    spec: GQRDeploymentSpec,
    *,
    step: Step,
    run_id: str,
    inputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Job of one pipeline step. dpo-iterate needs inputs base_model, ctr_uri, cor_uri
    (the stable model and the artifacts of this run's earlier steps)."""
    t = spec.training
    volumes, scratch = defaults.scratch_volumes(cache_size="100Gi")
    mounts = Mounts(volumes=volumes, mounts=scratch)
    resources = defaults.resources("pipeline", t.resources)
    gpus = defaults.gpu_count(resources) if step != "cor-build" else 0
    args = _args(name, namespace, spec, step, run_id, inputs or {}, mounts, gpus)
    container: dict[str, Any] = {
        "name": "step",
        "image": defaults.image("trainer", t.image),
        "command": ["gqr", step],  # the same as the step's own console script
        "args": args,
        "env": [
            *defaults.scratch_env(),
            *store_env(spec),
            {"name": "GQR_RUN_ID", "value": run_id},
        ],
        "resources": resources,
        "securityContext": defaults.container_security_context(),
        "volumeMounts": mounts.mounts,
        "terminationMessagePath": RESULT_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if secrets := store_secrets(spec):
        container["envFrom"] = secrets
    hf = spec.llm.hf_token_secret_ref
    # dpo-iterate's base model, ctr-train's pretrained encoder may be gated hf:// ones.
    if hf is not None and step != "cor-build":
        container["env"].append(
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf.name, "key": hf.key}}}
        )
    milvus_ref = spec.cooccurrence.milvus.secret_ref
    if milvus_ref is not None and step == "cor-build":
        container["env"].append(
            {
                "name": "MILVUS_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": milvus_ref.name, "key": milvus_ref.key}},
            }
        )
    own = {**selector_labels(name, "pipeline"), STEP_LABEL: step, RUN_LABEL: label_value(run_id)}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        **defaults.pod_spec(
            [container],
            mounts.volumes,
            placement=t,
            selector=own,
            gpus=defaults.gpu_count(resources),  # the toleration follows the request
        ),
    }
    template = defaults.pod_template(pod, t, own)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(
            job_name(name, step, run_id),
            namespace,
            {**labels(name, "pipeline"), **template["metadata"]["labels"]},
        ),
        "spec": {
            "backoffLimit": t.backoff_limit,
            "activeDeadlineSeconds": t.active_deadline_seconds,
            "ttlSecondsAfterFinished": t.ttl_seconds_after_finished,
            "template": template,
        },
    }
