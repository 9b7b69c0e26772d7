"""The README's example renderings are what the code renders (docs and code tell one story)."""

from __future__ import annotations

from pathlib import Path

import pytest

import gqr_serving.prompt
from gqr_serving.prompt import PromptRequest, SideInfo, load_preset, render, render_response

README = Path(gqr_serving.prompt.__file__).parent / "README.md"

EXAMPLES: dict[str, tuple[PromptRequest, list[str], dict[str, str]]] = {
    "suggestion": (
        PromptRequest(
            task="suggestion",
            query="what is green tea",
            side_info=SideInfo(
                ai_response="Green tea is made from unoxidised Camellia sinensis leaves.",
                history=["tea types"],
                cooccurring=["green tea benefits", "matcha vs green tea"],
            ),
        ),
        ["green tea caffeine", "how to brew green tea", "best green tea brands"],
        {},
    ),
    "clarification": (
        PromptRequest(
            task="clarification",
            query="write a poem",
            side_info=SideInfo(history=["poems about autumn"]),
        ),
        ["autumn leaves", "my hometown", "the sea", "first love"],
        {"guide": "What should the poem be about?", "prefix": "write a poem about"},
    ),
    "hint": (
        PromptRequest(
            task="hint",
            query="rome weather",
            side_info=SideInfo(history=["cheap flights to rome", "rome hotels", "rome weather"]),
        ),
        ["rome hotels"],
        {},
    ),
    "completion": (
        PromptRequest(
            task="completion",
            query="how to m",
            side_info=SideInfo(
                prefix="how to m", cooccurring=["how to make tea", "how to meditate"]
            ),
        ),
        ["how to make tea", "how to meditate", "how to make money online"],
        {},
    ),
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_readme_example_is_current(name: str) -> None:
    request, queries, aux = EXAMPLES[name]
    preset = load_preset(name)
    text = README.read_text()
    assert f"```text\n{render(preset, request)}```" in text, f"regenerate the {name} example"
    assert f"```text\n{render_response(preset, queries, aux)}\n```" in text
