"""The pydantic spec model and the CRD agree: samples, defaults, ranges, invalid specs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.operator.agreement import crd_errors, diff, pydantic_schema
from tests.unit.operator.cases import INVALID, MINIMAL, Spec
from tests.unit.operator.openapi import (
    SAMPLES,
    apply_defaults,
    load_sample,
    root_schema,
    spec_schema,
    validate,
)

from gqr_operator.models import GQRDeploymentSpec, GQRDeploymentStatus, parse_spec

TASKS = {"suggestion", "clarification", "hint", "completion"}


def _prune(value: Any) -> Any:
    """Drop None and empty containers: absent and empty mean the same to both sides."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _named(messages: list[str], field: str) -> bool:
    """Whether a message names field (list indices ignored)."""
    plain = [re.sub(r"(\[\d+\]|\.\d+(?=\.|:|$))", "", m) for m in messages]
    return any(field in m for m in plain)


def test_one_sample_per_task_and_one_external_vllm() -> None:
    specs = [load_sample(p)["spec"] for p in SAMPLES]
    assert {s["task"]["type"] for s in specs} == TASKS
    assert any(
        s["llm"].get("runtime") == "vllm"
        and s.get("cooccurrence", {}).get("milvus", {}).get("mode") == "external"
        for s in specs
    )


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem.rsplit("_", 1)[-1] for p in SAMPLES])
def test_sample_is_valid_for_crd_and_model(path: Path) -> None:
    doc = load_sample(path)
    assert (doc["apiVersion"], doc["kind"]) == ("gqr.dev/v1alpha1", "GQRDeployment")
    assert crd_errors(doc["spec"]) == []
    parse_spec(doc["spec"])


SPECS = [MINIMAL, *(load_sample(p)["spec"] for p in SAMPLES)]


@pytest.mark.parametrize("spec", SPECS, ids=["minimal", *(p.stem for p in SAMPLES)])
def test_crd_defaulting_equals_model_defaults(spec: Spec) -> None:
    stored = apply_defaults(spec, spec_schema())
    model = parse_spec(spec).model_dump(by_alias=True, exclude_none=True)
    assert _prune(stored) == _prune(model)
    # What the apiserver stores parses to the same model.
    assert parse_spec(stored) == parse_spec(spec)


def test_schemas_agree_field_by_field() -> None:
    pyd = pydantic_schema()
    assert diff(spec_schema(), pyd, pyd["$defs"], "spec") == []


@pytest.mark.parametrize(("case", "spec", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_rejected_by_both(case: str, spec: Spec, field: str) -> None:
    errors = crd_errors(spec)
    assert _named(errors, field), f"CRD errors {errors} do not name {field}"
    with pytest.raises(ValidationError) as info:
        GQRDeploymentSpec.model_validate(spec)
    messages = [
        f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in info.value.errors()
    ]
    assert _named(messages, field), f"model errors {messages} do not name {field}"


def test_model_messages_say_value_and_accepted() -> None:
    spec = {**MINIMAL, "task": {"type": "clarification", "numQueries": 1}}
    with pytest.raises(ValidationError, match=r"numQueries=1 .*accepted: 2-16"):
        parse_spec(spec)


def test_status_model_agrees_with_crd_status() -> None:
    pyd = GQRDeploymentStatus.model_json_schema(by_alias=True)
    crd_status = root_schema()["properties"]["status"]
    assert diff(crd_status, pyd, pyd.get("$defs", {}), "status") == []


def test_status_dump_validates_against_crd() -> None:
    status = GQRDeploymentStatus.model_validate(
        {
            "phase": "Canary",
            "observedGeneration": 3,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Serving",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
            "stable": {"version": "v1", "ctr": 0.031, "impressions": 1000, "clicks": 31},
            "canary": {"version": "v2", "weight": 10, "step": 0, "ctr": 0.034},
            "pipeline": {"runId": "r1", "jobs": [{"step": "ctr-train", "metrics": {"auc": 0.7}}]},
            "history": [{"version": "v0", "outcome": "Promoted", "steps": [{"weight": 10}]}],
        }
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert validate(dumped, root_schema()["properties"]["status"], "status") == []


def test_the_rollout_limit_reaches_the_machine() -> None:
    from gqr_operator.progress import rollout_config

    spec = {
        **MINIMAL,
        "rollout": {
            "steps": [{"weight": 10, "minImpressions": 100, "maxImpressions": 900}],
            "analysis": {"onInconclusive": "pause"},
        },
    }
    cfg = rollout_config(parse_spec(spec))
    assert cfg.steps[0].max_impressions == 900 and cfg.on_inconclusive == "pause"
    default = rollout_config(parse_spec(MINIMAL))
    assert [s.max_impressions for s in default.steps] == [0, 0]
    assert default.on_inconclusive == "fail"
