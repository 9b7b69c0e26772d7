"""Pipeline Jobs: cor-build -> ctr-train -> dpo-iterate (a regular run), annotate -> cor-build
-> ctr-train -> sft (a bootstrap run). Each writes its result JSON (artifact URI + metrics) to
/dev/termination-log for the operator to read."""

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

Step = Literal["cor-build", "ctr-train", "dpo-iterate", "annotate", "sft"]
STEPS: tuple[Step, ...] = ("cor-build", "ctr-train", "dpo-iterate")
BOOTSTRAP_STEPS: tuple[Step, ...] = ("annotate", "cor-build", "ctr-train", "sft")
RESULT_PATH = "/dev/termination-log"
DPO_INPUTS = ("base_model", "ctr_uri", "cor_uri")
SFT_INPUTS = ("base_model", "ctr_uri", "annotations_uri")
TEACHER_KEY_ENV = "GQR_TEACHER_API_KEY"
"""The annotate Job's environment variable holding the teacher's API key (from the Secret)."""
GPU_STEPS = ("ctr-train", "dpo-iterate", "sft")
"""Steps that run on the pipeline's GPUs when its resources have some."""
SHM_SIZE = "8Gi"
"""The /dev/shm of a multi-GPU step (NCCL and the data loaders' workers share memory through
it; a container's default is 64Mi)."""


def step_command(step: Step, gpus: int) -> list[str]:
    """``gqr <step>``; with several GPUs, under PyTorch's launcher, one process per GPU on
    this node (``--standalone``: its own rendezvous). ``--`` ends torchrun's own flags (it would
    take a step's ``--logs`` for its ``--logs-specs``)."""
    if gpus <= 1 or step not in GPU_STEPS:
        return ["gqr", step]
    launcher = ["torchrun", "--standalone", "--nproc-per-node", str(gpus), "--no-python", "--"]
    return [*launcher, "gqr", step]


def without_launcher(command: list[str]) -> list[str]:
    """``command`` without :func:`step_command`'s single-node torchrun prefix, if any."""
    if command and command[0] == "torchrun" and "--" in command:
        return command[command.index("--") + 1 :]
    return command


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
    # Built in a work folder, published whole as <artifacts>/llm/<run>.
    work = _work(spec, out, "llm", run_id)
    return [
        *args,
        *(["--lora"] if d.lora else []),
        # the gateway's output filter: what it would not serve is never a chosen response
        *output_filter_args(spec, mounts),
        *_flags({"--out": work, "--publish": f"{out}/llm"}),
    ]


def _work(spec: GQRDeploymentSpec, out: str, kind: str, run_id: str) -> str:
    """A step's work folder: next to the versions on a claim (a retried pod resumes, the
    result moves in by rename), on the scratch volume for an object store."""
    return (
        f"{WORK_DIR}/{kind}-{run_id}"
        if is_remote(spec.artifacts.uri)
        else f"{out}/{kind}/.work/{run_id}"
    )


def _annotate_args(spec: GQRDeploymentSpec, run_id: str, logs: str, out: str) -> list[str]:
    b = spec.bootstrap
    if b is None:
        raise ValueError("the annotate step needs spec.bootstrap")
    t = b.teacher
    key = t.api_key_secret_ref
    args = _flags(
        {
            "--teacher-url": t.url,
            "--teacher-model": t.model,
            "--temperature": t.temperature,
            "--logs": logs,
            "--window-days": spec.training.ctr.window_days,
            "--max-requests": b.annotations,
            "--augment": b.augment,
            "--task": spec.task.type,
            # the rows are published whole as <artifacts>/annotations/<run>
            "--out": f"{_work(spec, out, 'annotations', run_id)}/sft.jsonl",
            "--publish": f"{out}/annotations",
        }
    )
    if key is not None:  # the key itself only in the environment, from the Secret
        source = f"Secret {key.name} key {key.key}"
        args += _flags({"--api-key-env": TEACHER_KEY_ENV, "--api-key-from": source})
    return args


def _sft_args(
    spec: GQRDeploymentSpec,
    run_id: str,
    inputs: Mapping[str, str],
    mounts: Mounts,
    logs: str,
    out: str,
) -> list[str]:
    missing = [k for k in SFT_INPUTS if not inputs.get(k)]
    if missing or spec.bootstrap is None:
        raise ValueError(f"sft needs spec.bootstrap and inputs {missing} (keys: {SFT_INPUTS})")
    b, s = spec.bootstrap, spec.bootstrap.sft
    args = _flags(
        {
            "--data": storage_uri(inputs["annotations_uri"], mounts, read_only=True),
            "--model": storage_uri(inputs["base_model"], mounts, read_only=True),
            "--epochs": s.epochs,
            "--batch-size": s.batch_size,
            "--lora-r": s.lora_rank,
            "--max-length": s.max_length,
            # the gate: the fine-tuned model against the stable as served, on the test prompts
            # of the log window, with this run's CTR predictor and COR index
            "--ctr": storage_uri(inputs["ctr_uri"], mounts, read_only=True),
            "--logs": logs,
            "--window-days": spec.training.ctr.window_days,
            "--cor": out,
            "--cor-k": spec.cooccurrence.neighbours,
            "--task": spec.task.type,
            "--stable-few-shot": b.few_shot.count(spec.task.type),
            "--eval-temperature": spec.llm.decoding.temperature,
            "--eval-top-p": spec.llm.decoding.top_p,
            "--out": _work(spec, out, "llm", run_id),
            "--publish": f"{out}/llm",
        }
    )
    lr = _flags({"--lr": s.learning_rate}) if s.learning_rate is not None else []
    return [*args, *lr, *(["--lora"] if s.lora else [])]


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
    if step == "annotate":
        return [*_annotate_args(spec, run_id, logs, out), *common]
    if step == "sft":
        sft = _sft_args(spec, run_id, inputs, mounts, logs, out)
        return [*sft, *device, *(["--bf16"] if gpus else []), *common]
    dpo = _dpo_args(spec, run_id, inputs, mounts, logs, out)
    return [*dpo, *device, *(["--bf16"] if gpus else []), *common]


def _secret_env(spec: GQRDeploymentSpec, step: Step) -> list[dict[str, Any]]:
    """Secret keys a step reads from its environment."""
    env: list[dict[str, Any]] = []
    hf = spec.llm.hf_token_secret_ref
    # dpo-iterate's and sft's base model, ctr-train's pretrained encoder may be gated hf:// ones.
    if hf is not None and step in GPU_STEPS:
        env.append(
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf.name, "key": hf.key}}}
        )
    key = spec.bootstrap.teacher.api_key_secret_ref if spec.bootstrap else None
    if key is not None and step == "annotate":
        # optional: a missing Secret or key still starts the pod, whose annotate fails at once
        # naming the Secret (a required one would leave the pod waiting until the deadline)
        ref = {"name": key.name, "key": key.key, "optional": True}
        env.append({"name": TEACHER_KEY_ENV, "valueFrom": {"secretKeyRef": ref}})
    return env


def build_pipeline_job(
    name: str,
    namespace: str,
    spec: GQRDeploymentSpec,
    *,
    step: Step,
    run_id: str,
    inputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Job of one pipeline step. dpo-iterate needs inputs base_model, ctr_uri, cor_uri,
    sft base_model, ctr_uri, annotations_uri (the stable model and the artifacts of this run's
    earlier steps)."""
    t = spec.training
    volumes, scratch = defaults.scratch_volumes(cache_size="100Gi")
    mounts = Mounts(volumes=volumes, mounts=scratch)
    resources = defaults.resources("pipeline", t.resources)
    gpus = defaults.gpu_count(resources) if step in GPU_STEPS else 0
    args = _args(name, namespace, spec, step, run_id, inputs or {}, mounts, gpus)
    container: dict[str, Any] = {
        "name": "step",
        "image": defaults.image("trainer", t.image),
        "command": step_command(step, gpus),  # the step's own console script
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
    if gpus > 1:
        shm = {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}
        mounts.add_volume(shm, {"name": "shm", "mountPath": "/dev/shm"})
    if secrets := store_secrets(spec):
        container["envFrom"] = secrets
    container["env"].extend(_secret_env(spec, step))
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
