"""The universal template: one layout for every preset, as text, messages or a chat template."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from gqr_serving.prompt import (
    PromptRequest,
    SideInfo,
    TaskPreset,
    render,
    render_chat,
    render_messages,
    split_sections,
    unescape,
)

from .conftest import CHATML, NO_SYSTEM, make_tokenizer


def _suggestion_request(**kwargs: object) -> PromptRequest:
    side = SideInfo(
        ai_response="Green tea is made from unoxidised leaves.",
        history=["tea types", "how to make tea"],
        cooccurring=["green tea benefits", "matcha"],
    )
    return PromptRequest.model_validate(
        {"task": "suggestion", "query": "what is green tea", "side_info": side, **kwargs}
    )


def test_suggestion_prompt_layout(suggestion: TaskPreset) -> None:
    prompt = render(suggestion, _suggestion_request())
    sections = dict(split_sections(prompt))
    assert list(sections) == [
        "instructions",
        "query",
        "ai_response",
        "history",
        "cooccurring",
        "response_format",
    ]
    assert sections["query"] == "what is green tea"
    assert sections["history"] == "- tea types\n- how to make tea"
    assert "q1 <SEP> q2 <SEP> q3" in sections["response_format"]
    assert "exactly 3 queries" in sections["response_format"]
    assert "- <cooccurring>: Queries that users" in sections["instructions"]
    assert prompt.endswith("</response_format>\n<response>\n")


def test_num_queries_override_changes_the_format(suggestion: TaskPreset) -> None:
    prompt = render(suggestion, _suggestion_request(num_queries=5))
    body = dict(split_sections(prompt))["response_format"]
    assert "q1 <SEP> q2 <SEP> ... <SEP> q5" in body and "exactly 5 queries" in body


def test_num_queries_outside_the_preset_range_is_refused(suggestion: TaskPreset) -> None:
    with pytest.raises(ValueError, match=r"num_queries=7 is outside the range 1\.\.6"):
        render(suggestion, _suggestion_request(num_queries=7))


def test_absent_side_information_is_left_out(suggestion: TaskPreset) -> None:
    request = PromptRequest(task="suggestion", query="tea")
    assert [n for n, _ in split_sections(render(suggestion, request))] == [
        "instructions",
        "query",
        "response_format",
    ]


def test_clarification_prompt_asks_for_aux_texts(clarification: TaskPreset) -> None:
    request = PromptRequest(task="clarification", query="write a poem")
    body = dict(split_sections(render(clarification, request)))["response_format"]
    lines = body.splitlines()
    assert lines[1].startswith("guide: [")
    assert lines[2].startswith("prefix: [")
    assert lines[3].startswith("suffix: [") and "optional" in lines[3]
    assert "q1 <SEP> q2 <SEP> ... <SEP> q8" in body


def test_hint_prompt_has_one_query_and_needs_history(hint: TaskPreset) -> None:
    request = PromptRequest(task="hint", query="tea", side_info=SideInfo(history=["a", "b"]))
    body = dict(split_sections(render(hint, request)))["response_format"]
    assert "exactly 1 query on the last line" in body and "<SEP>" not in body
    assert "from the session history" in body
    with pytest.raises(ValueError, match=r"requires side information 'history'.*side_info"):
        render(hint, PromptRequest(task="hint", query="tea"))


def test_completion_prompt_carries_the_prefix(completion: TaskPreset) -> None:
    request = PromptRequest(task="completion", query="wea", side_info=SideInfo(prefix="wea"))
    sections = dict(split_sections(render(completion, request)))
    assert sections["prefix"] == "wea"
    assert "starts with the typed prefix" in sections["response_format"]


def test_long_history_keeps_the_newest_items_and_cuts_long_ones(suggestion: TaskPreset) -> None:
    history = [f"query {i}" for i in range(30)] + ["x" * 500]
    request = PromptRequest(task="suggestion", query="q", side_info=SideInfo(history=history))
    lines = dict(split_sections(render(suggestion, request)))["history"].splitlines()
    assert len(lines) == 10 and lines[0] == "- query 21"
    assert lines[-1] == "- " + "x" * 199 + "…"


def test_custom_sections_come_from_extra(suggestion: TaskPreset) -> None:
    with pytest.raises(ValueError, match=r"request.extra has sections \['page'\]"):
        render(suggestion, _suggestion_request(extra={"page": "home"}))


def test_task_mismatch_is_refused(hint: TaskPreset) -> None:
    with pytest.raises(ValueError, match=r"request.task='suggestion' does not match"):
        render(hint, _suggestion_request())


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_a_blank_query_is_refused(query: str) -> None:
    with pytest.raises(ValidationError, match="query must not be empty"):
        PromptRequest(task="suggestion", query=query)


def test_request_query_is_stripped_and_num_queries_bounded() -> None:
    assert PromptRequest(task="hint", query="  tea \n").query == "tea"
    with pytest.raises(ValidationError, match="num_queries"):
        PromptRequest(task="hint", query="tea", num_queries=0)


def test_messages_split_instructions_from_input(suggestion: TaskPreset) -> None:
    request = _suggestion_request()
    system, user = render_messages(suggestion, request)
    assert system["role"] == "system" and user["role"] == "user"
    assert system["content"] == dict(split_sections(render(suggestion, request)))["instructions"]
    assert split_sections(user["content"])[0][0] == "query"
    (only,) = render_messages(suggestion, request, system=False)
    assert render(suggestion, request).startswith(only["content"])


def test_render_chat_uses_the_tokenizer_template(suggestion: TaskPreset) -> None:
    text = render_chat(suggestion, _suggestion_request(), make_tokenizer(CHATML))
    assert text.startswith("<|im_start|>system\nYou recommend follow-up search queries.")
    assert "<|im_start|>user\n<query>\nwhat is green tea\n</query>" in text
    assert text.endswith("</response_format><|im_end|>\n<|im_start|>assistant\n")


def test_render_chat_without_a_system_role_folds_it_into_the_user_turn(
    suggestion: TaskPreset,
) -> None:
    text = render_chat(suggestion, _suggestion_request(), make_tokenizer(NO_SYSTEM))
    assert text.startswith("<start_of_turn>user\n<instructions>\nYou recommend")
    assert text.endswith("<start_of_turn>model\n")


def test_render_chat_without_a_chat_template_falls_back_and_says_so(
    suggestion: TaskPreset, caplog: pytest.LogCaptureFixture
) -> None:
    request = _suggestion_request()
    with caplog.at_level(logging.WARNING, logger="gqr_serving.prompt.template"):
        text = render_chat(suggestion, request, make_tokenizer(None))
    assert text == render(suggestion, request)
    assert "has no chat template" in caplog.text


def test_sections_unescape_back_to_the_user_text(suggestion: TaskPreset) -> None:
    answer = "Use <b>bold</b> & keep\nlines"
    request = _suggestion_request(side_info=SideInfo(ai_response=answer))
    assert unescape(dict(split_sections(render(suggestion, request)))["ai_response"]) == answer
