"""Few-shot prompting of a base-model arm (the bootstrap stage's day 0): the routing entry's
``few_shot`` puts the task's packaged demonstrations before the prompt; a fine-tuned arm's
prompt is the request alone. The LLM is a scripted stand-in that records the prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_fakes import ScriptedBackend, client

from gqr_contracts.routing import PACKAGED_DEMONSTRATIONS
from gqr_serving.prompt import load_preset
from gqr_serving.prompt.fewshot import DEMO_SEPARATOR, packaged, prefix_text

pytestmark = pytest.mark.anyio
REQ = {"task": "suggestion", "query": "what is green tea", "ai_answer": "A tea."}


def _routing(tmp_path: Path, arms: list[dict[str, object]]) -> Path:
    path = tmp_path / "routing.json"
    path.write_text(json.dumps({"salt": "s", "arms": arms}))
    return path


def _arm(name: str, weight: int, few_shot: int = 0) -> dict[str, object]:
    arm: dict[str, object] = {
        "name": name,
        "weight": weight,
        "model_version": name,
        "backend": {"kind": "tgi", "url": "http://127.0.0.1:9"},
    }
    return {**arm, "few_shot": few_shot} if few_shot else arm


@pytest.mark.parametrize(("few_shot", "arm"), [(3, "initial"), (0, "tuned")])
async def test_base_model_arm_prompt_holds_the_demonstrations_and_a_tuned_one_not(
    tmp_path: Path, few_shot: int, arm: str
) -> None:
    backend = ScriptedBackend("green tea benefits <SEP> matcha vs green tea <SEP> oolong tea")
    routing = _routing(tmp_path, [_arm(arm, 100, few_shot)])
    async with client(tmp_path, backend, routing_file=routing) as c:
        r = await c.post("/v1/recommend", json=REQ)
    assert r.status_code == 200, r.text
    assert r.json()["queries"] == ["green tea benefits", "matcha vs green tea", "oolong tea"]
    (prompt,) = backend.prompts
    demos = packaged("suggestion")
    shown = [req.query for req, _ in demos if f"<query>\n{req.query}\n" in prompt.text]
    assert shown == [req.query for req, _ in demos[:few_shot]]
    assert prompt.text.endswith("<response>\n") and "what is green tea" in prompt.text
    if few_shot:
        assert prompt.text.startswith(prefix_text(load_preset("suggestion"), few_shot))
        assert prompt.text.count(DEMO_SEPARATOR + "<") == few_shot
        # chat form: the system message, then a user/assistant turn per demonstration
        roles = [m["role"] for m in prompt.messages]
        assert roles == ["system", *["user", "assistant"] * few_shot, "user"]
        assert demos[0][1][0] in prompt.messages[2]["content"]
    else:
        assert [m["role"] for m in prompt.messages] == ["system", "user"]


def test_packaged_demonstrations_are_what_the_contract_says() -> None:
    """The operator validates spec.bootstrap.fewShot.demonstrations against this count."""
    assert {t: len(packaged(t)) for t in ("suggestion", "clarification", "hint", "completion")} == {
        t: PACKAGED_DEMONSTRATIONS.get(t, 0)
        for t in ("suggestion", "clarification", "hint", "completion")
    }
    preset = load_preset("suggestion")
    for req, queries in packaged("suggestion"):  # each demonstration passes its own task's rules
        from gqr_serving.prompt import enforce, parse, render_response

        answer = render_response(preset, list(queries))
        assert list(enforce(preset, req, parse(preset, answer)).queries) == list(queries)
