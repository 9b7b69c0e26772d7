"""The pydantic spec model: samples parse, invalid specs are refused naming the field, messages
say the value and what is accepted. (The real apiserver refuses the same specs with the CRD
generated from this model: tests/integration/operator.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.unit.operator.cases import INVALID, MINIMAL, SAMPLES, Spec, load_sample

from gqr_operator.models import GQRDeploymentSpec, parse_spec

TASKS = {"suggestion", "clarification", "hint", "completion"}


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
def test_sample_parses(path: Path) -> None:
    doc = load_sample(path)
    assert (doc["apiVersion"], doc["kind"]) == ("gqr.dev/v1alpha1", "GQRDeployment")
    parse_spec(doc["spec"])


@pytest.mark.parametrize(("case", "spec", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_refused_naming_the_field(case: str, spec: Spec, field: str) -> None:
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
