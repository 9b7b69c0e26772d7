"""The operator's pipeline Jobs and the real entrypoints agree: every Job's command is
`gqr <step>`, and its args parse with that step's own parser into what the step needs (log
window, artifact root, version = the run, result file = the termination-message path).
A flag renamed on either side fails here, not in a cluster.

Known gap (docs/STATUS.md): the entrypoints write artifacts to local folders only, so an
object-store ``spec.artifacts.uri`` (s3://, gs://) parses but is not yet usable as an output
root; the path checks below apply to mounted (pvc://) artifact stores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.operator.cases import MINIMAL, SAMPLES, load_sample

from gqr_operator.models import GQRDeploymentSpec, parse_spec
from gqr_operator.pipeline.results import parse_result
from gqr_operator.resources.jobs import RESULT_PATH, STEPS, build_pipeline_job
from gqr_operator.resources.milvus import cor_prefix
from gqr_operator.resources.storage import Mounts, pvc_path, uri_for_path
from gqr_training import cli

SPECS = [("minimal", parse_spec(MINIMAL))] + [
    (p.stem.rsplit("_", 1)[-1], parse_spec(load_sample(p)["spec"])) for p in SAMPLES
]


def _parse(step: str, args: list[str]) -> argparse.Namespace:
    import importlib

    module = importlib.import_module(cli.ENTRYPOINTS[step][0])
    ns: argparse.Namespace = module.make_parser().parse_args(args)
    return ns


@pytest.mark.parametrize(("label", "spec"), SPECS, ids=[s[0] for s in SPECS])
@pytest.mark.parametrize("step", STEPS)
def test_job_args_parse_with_the_real_entrypoint(
    label: str, spec: GQRDeploymentSpec, step: str
) -> None:
    root = spec.artifacts.uri.rstrip("/")
    inputs = {"base_model": spec.llm.model, "ctr_uri": f"{root}/ctr/7", "cor_uri": f"{root}/cor/7"}
    job = build_pipeline_job("demo", "ns", spec, step=step, run_id="7", inputs=inputs)  # type: ignore[arg-type]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-2:] == ["gqr", step]  # under torchrun with several GPUs
    assert step in cli.ENTRYPOINTS
    args = _parse(step, container["args"])
    assert args.result_file == Path(RESULT_PATH)
    assert args.version == "7"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}

    mounted_artifacts = spec.artifacts.uri.startswith("pvc://")

    def local(path: str) -> bool:  # a mounted path, or a URI the step reads itself (fsspec)
        return "://" in path or any(path.startswith(m) for m in mounts)

    def out(path: Path) -> bool:
        return not mounted_artifacts or local(str(path))

    gpus = int(container["resources"]["limits"].get("nvidia.com/gpu", "0"))
    if step != "cor-build":  # the trainers use the GPU the Job asks for
        assert args.device == ("cuda" if gpus else "cpu")
    if step == "cor-build":
        assert args.source == "logstore" and local(args.input) and args.window_days >= 1
        assert args.index and args.milvus_uri and out(args.artifact_root)
        assert args.prefix == cor_prefix("demo", "ns")  # this deployment's own collections
    elif step == "ctr-train":
        assert local(args.logs) and out(args.out) and args.window_days >= 1
        assert (args.backbone, args.variant) == (
            spec.ctr_predictor.backbone,
            spec.ctr_predictor.variant,
        )
    else:
        assert local(args.logs) and args.model and args.ctr and args.cor
        assert args.max_iterations == spec.training.dpo.max_iterations
        assert args.lora == spec.training.dpo.lora
        # The model lands whole as <artifacts>/llm/<run>: built in a work folder (on the claim,
        # where a retried pod resumes; the scratch volume for an object store) and published.
        uri = spec.artifacts.uri.rstrip("/")
        assert args.publish == (pvc_path(uri, Mounts()) if mounted_artifacts else uri) + "/llm"
        work = str(args.out)
        assert work == (f"{args.publish}/.work/7" if mounted_artifacts else "/cache/work/llm-7")
        assert any(work.startswith(m) for m in mounts)  # a volume of the pod, never its root fs


def test_gqr_dispatches_to_the_entrypoint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["ctr-train", "--help"])
    assert e.value.code == 0
    assert "usage: ctr-train" in capsys.readouterr().out


def test_reported_mount_paths_become_pvc_uris() -> None:
    mounts = Mounts()
    path = pvc_path("pvc://store/artifacts/llm/7/final", mounts)
    assert uri_for_path(path) == "pvc://store/artifacts/llm/7/final"
    assert uri_for_path("s3://bucket/x") == "s3://bucket/x"
    assert uri_for_path("/elsewhere/x") == "/elsewhere/x"
    line: dict[str, Any] = {
        "kind": "job_result",
        "job": "ctr-train",
        "status": "succeeded",
        "version": "7",
        "artifact_uri": path.rsplit("/llm", 1)[0] + "/ctr/7",
        "metrics": {"auc": 0.7},
    }
    assert parse_result(json.dumps(line), "ctr-train").artifact_uri == "pvc://store/artifacts/ctr/7"


def test_logs_and_artifacts_on_one_claim_are_mounted_read_write() -> None:
    from tests.unit.operator.cases import patched

    spec = parse_spec(
        patched(logs={"uri": "pvc://store/logs"}, artifacts={"uri": "pvc://store/artifacts"})
    )
    job = build_pipeline_job("demo", "ns", spec, step="ctr-train", run_id="1")
    pod = job["spec"]["template"]["spec"]
    claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert [v["persistentVolumeClaim"] for v in claims] == [
        {"claimName": "store", "readOnly": False}
    ]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == claims[0]["name"])
    assert mount["readOnly"] is False


@pytest.mark.parametrize("step", ["ctr-train", "dpo-iterate", "sft"])
def test_a_stage_with_several_gpus_runs_its_step_under_torchrun(step: str) -> None:
    """4 GPUs in the pipeline's resources: the trainer runs as 4 processes of torchrun on the
    pod's node (one per GPU), and torchrun's own parser leaves the step its every flag."""
    from tests.unit.operator.cases import patched
    from torch.distributed.run import get_args_parser

    from gqr_operator.resources.jobs import SFT_INPUTS

    gpus = {"nvidia.com/gpu": 4}
    teacher = {"url": "https://teacher.example/v1", "model": "qwen-72b"}
    spec = parse_spec(
        patched(training={"resources": {"limits": gpus}}, bootstrap={"teacher": teacher})
    )
    inputs = dict.fromkeys((*SFT_INPUTS, "cor_uri"), "pvc://store/artifacts/x")
    job = build_pipeline_job("demo", "ns", spec, step=step, run_id="7", inputs=inputs)  # type: ignore[arg-type]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    command = container["command"]
    assert command[0] == "torchrun"
    launcher = get_args_parser().parse_args([*command[1:], *container["args"]])
    assert (launcher.nproc_per_node, launcher.standalone, launcher.no_python) == ("4", True, True)
    assert launcher.training_script == "gqr"
    assert launcher.training_script_args == [step, *container["args"]]
    assert _parse(step, container["args"]).device == "cuda"  # each process its LOCAL_RANK GPU
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "shm", "mountPath": "/dev/shm"}.items() <= next(
        m for m in container["volumeMounts"] if m["name"] == "shm"
    ).items()


@pytest.mark.parametrize("gpus", [0, 1])
def test_one_gpu_or_none_runs_one_process(gpus: int) -> None:
    from tests.unit.operator.cases import patched

    spec = parse_spec(patched(training={"resources": {"limits": {"nvidia.com/gpu": gpus}}}))
    job = build_pipeline_job("demo", "ns", spec, step="ctr-train", run_id="7")
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["gqr", "ctr-train"]
    assert "shm" not in {v["name"] for v in pod["volumes"]}


def test_cor_build_runs_one_process_whatever_the_gpus() -> None:
    from tests.unit.operator.cases import patched

    spec = parse_spec(patched(training={"resources": {"limits": {"nvidia.com/gpu": 4}}}))
    job = build_pipeline_job("demo", "ns", spec, step="cor-build", run_id="7")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["gqr", "cor-build"]
