"""spec.bootstrap: validation with errors naming field, value and what is accepted; the
bootstrap Jobs (annotate, sft) parsed by the real entrypoints' own parsers; the teacher's key
only from its Secret; few-shot routing for the spec's own model only; when a run is a
bootstrap run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.operator.cases import patched

from gqr_operator.children import INITIAL_VERSION
from gqr_operator.models import parse_spec
from gqr_operator.progress import bootstrapping
from gqr_operator.resources.jobs import (
    BOOTSTRAP_STEPS,
    RESULT_PATH,
    TEACHER_KEY_ENV,
    build_pipeline_job,
)
from gqr_operator.resources.llm import ModelVersion
from gqr_operator.resources.routing import routing_config
from gqr_operator.rollout.config import ModelRef
from gqr_training.align import annotate, sft

TEACHER = {"url": "https://teacher.example/v1", "model": "qwen-72b"}
BOOT = {"teacher": {**TEACHER, "apiKeySecretRef": {"name": "teacher-key"}}}
INPUTS = {
    "base_model": "pvc://store/models/base",
    "ctr_uri": "pvc://store/artifacts/ctr/7",
    "cor_uri": "pvc://store/artifacts/cor/7",
    "annotations_uri": "pvc://store/artifacts/annotations/7",
}
PVC = {"artifacts": {"uri": "pvc://store/artifacts"}, "logs": {"uri": "pvc://store/logs"}}


def _container(job: dict[str, Any]) -> dict[str, Any]:
    return dict(job["spec"]["template"]["spec"]["containers"][0])


def _job(step: str, **sections: Any) -> dict[str, Any]:
    spec = parse_spec(patched(bootstrap=BOOT, **PVC, **sections))
    return build_pipeline_job("x", "ns", spec, step=step, run_id="7", inputs=INPUTS)  # type: ignore[arg-type]


def test_annotate_job_parses_with_gqr_annotate_and_keeps_the_key_in_the_secret() -> None:
    c = _container(_job("annotate"))
    assert c["command"] == ["gqr", "annotate"]
    a: annotate.AnnotateConfig = annotate.make_parser().parse_config(c["args"])
    assert (a.teacher_url, a.teacher_model, a.task) == (TEACHER["url"], "qwen-72b", "suggestion")
    assert (a.max_requests, a.window_days, a.version) == (2000, 14, "7")
    assert a.logs and a.logs.startswith("/") and a.result_file == Path(RESULT_PATH)
    assert a.publish and a.publish.endswith("/annotations") and a.out.name == "sft.jsonl"
    assert a.api_key_env == TEACHER_KEY_ENV and a.api_key_from == "Secret teacher-key key apiKey"
    (env,) = [e for e in c["env"] if e["name"] == TEACHER_KEY_ENV]
    ref = {"name": "teacher-key", "key": "apiKey", "optional": True}
    assert env == {"name": TEACHER_KEY_ENV, "valueFrom": {"secretKeyRef": ref}}
    assert "value" not in env and "HF_TOKEN" not in json.dumps(c["env"])
    assert c["securityContext"]["runAsNonRoot"] and c["terminationMessagePath"] == RESULT_PATH
    assert "nvidia.com/gpu" in c["resources"]["limits"] and "--device" not in c["args"]
    others = [_container(_job(s)) for s in BOOTSTRAP_STEPS if s != "annotate"]
    assert all(TEACHER_KEY_ENV not in json.dumps(o) for o in others)  # only annotate sees it


def test_no_key_ref_sends_no_key() -> None:
    spec = parse_spec(patched(bootstrap={"teacher": TEACHER}, **PVC))
    job = build_pipeline_job("x", "ns", spec, step="annotate", run_id="7")
    c = _container(job)
    assert "--api-key-env" not in c["args"] and TEACHER_KEY_ENV not in json.dumps(c)


def test_sft_job_parses_with_gqr_sft_and_measures_the_gate_as_served() -> None:
    sft_spec = {"epochs": 2, "learningRate": 5e-5, "lora": False, "loraRank": 8, "batchSize": 4}
    hf = {"hfTokenSecretRef": {"name": "hf"}, "decoding": {"temperature": 0.4}}
    boot = {**BOOT, "sft": sft_spec, "fewShot": {"demonstrations": 2}}
    spec = parse_spec(patched(bootstrap=boot, llm=hf, **PVC))
    job = build_pipeline_job("x", "ns", spec, step="sft", run_id="7", inputs=INPUTS)
    c = _container(job)
    assert c["command"] == ["gqr", "sft"]
    s = sft.make_parser().parse_config(c["args"])
    assert (s.epochs, s.lr, s.lora, s.lora_r, s.batch_size) == (2.0, 5e-5, False, 8, 4)
    assert s.data.endswith("/artifacts/annotations/7") and s.model.endswith("/models/base")
    assert s.ctr and s.ctr.endswith("/ctr/7") and s.logs and s.cor
    assert (s.stable_few_shot, s.eval_temperature, s.eval_top_p) == (2, 0.4, 0.9)
    assert s.publish and s.publish.endswith("/artifacts/llm") and s.version == "7"
    assert (s.device, s.bf16) == ("cuda", True)  # the default pipeline resources hold a GPU
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}} in c[
        "env"
    ]


def test_sft_defaults_use_lora_and_the_task_default_demonstrations() -> None:
    s = sft.make_parser().parse_config(_container(_job("sft"))["args"])
    assert s.lora and s.lr is None and s.stable_few_shot == 3


@pytest.mark.parametrize(
    ("bootstrap", "task", "needle"),
    [
        ({"teacher": {**TEACHER, "url": "teacher:8000"}}, None, "url"),
        ({"teacher": {"url": TEACHER["url"]}}, None, "model"),
        ({**BOOT, "annotations": 3}, None, "annotations"),
        ({**BOOT, "fewShot": {"demonstrations": 6}}, None, "carries 5"),
        ({**BOOT, "fewShot": {"demonstrations": 1}}, {"type": "completion"}, "carries 0"),
        ({**BOOT, "sft": {"epochs": 0}}, None, "epochs"),
        ({**BOOT, "apiKey": "sk-123"}, None, "apiKey"),  # a key only from a Secret
    ],
)
def test_bad_bootstrap_is_refused_naming_field_and_value(
    bootstrap: dict[str, Any], task: dict[str, Any] | None, needle: str
) -> None:
    sections: dict[str, Any] = {"bootstrap": bootstrap}
    if task:
        sections["task"] = task
    with pytest.raises(ValidationError) as err:
        parse_spec(patched(**sections))
    assert needle in str(err.value)


def test_other_tasks_bootstrap_zero_shot_by_default() -> None:
    spec = parse_spec(patched(bootstrap=BOOT, task={"type": "completion"}))
    assert spec.bootstrap and spec.bootstrap.few_shot.count("completion") == 0


def test_few_shot_routing_for_the_spec_model_only() -> None:
    spec = parse_spec(patched(bootstrap=BOOT))
    base = ModelVersion(INITIAL_VERSION, spec.llm.model)
    tuned = ModelVersion("1", "s3://artifacts/x/llm/1")
    doc = routing_config("x", "ns", spec, stable=base, canary=tuned, canary_weight=10)
    assert [(a.name, a.few_shot) for a in doc.arms] == [("stable", 3), ("canary", 0)]
    assert '"few_shot": 3' in doc.to_document()
    after = routing_config("x", "ns", spec, stable=tuned)
    assert after.arms[0].few_shot == 0 and "few_shot" not in after.to_document()
    plain = routing_config("x", "ns", parse_spec(patched()), stable=base)
    assert plain.arms[0].few_shot == 0  # no spec.bootstrap: the model is fine-tuned already


def test_a_run_is_a_bootstrap_run_until_a_fine_tuned_model_is_promoted() -> None:
    spec = parse_spec(patched(bootstrap=BOOT))
    assert bootstrapping(spec, ModelRef(INITIAL_VERSION, spec.llm.model))
    assert not bootstrapping(spec, ModelRef("1", "s3://artifacts/x/llm/1"))
    assert not bootstrapping(parse_spec(patched()), ModelRef(INITIAL_VERSION, spec.llm.model))


def test_bootstrap_steps_need_their_inputs() -> None:
    spec = parse_spec(patched(bootstrap=BOOT))
    with pytest.raises(ValueError, match="annotations_uri"):
        build_pipeline_job("x", "ns", spec, step="sft", run_id="7", inputs={"base_model": "m"})
    with pytest.raises(ValueError, match=r"spec\.bootstrap"):
        build_pipeline_job("x", "ns", parse_spec(patched()), step="annotate", run_id="7")
