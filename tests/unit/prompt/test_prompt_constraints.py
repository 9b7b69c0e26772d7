"""Each preset constraint, enforced after parsing: drop, report, never raise."""

from __future__ import annotations

import pytest

from gqr_serving.prompt import (
    ParseResult,
    PromptRequest,
    SideInfo,
    TaskPreset,
    enforce,
    is_near_copy,
    parse,
)


def _enforce(preset: TaskPreset, request: PromptRequest, queries: list[str]) -> ParseResult:
    return enforce(preset, request, ParseResult(queries=queries))


def test_n_is_the_preset_default_or_the_request_override(suggestion: TaskPreset) -> None:
    queries = ["a", "b", "c", "d", "e"]
    request = PromptRequest(task="suggestion", query="tea")
    result = _enforce(suggestion, request, queries)
    assert result.queries == ["a", "b", "c"] and result.codes == ["too_many"]
    override = request.model_copy(update={"num_queries": 4})
    assert _enforce(suggestion, override, queries).queries == ["a", "b", "c", "d"]


def test_a_bad_override_is_clamped_not_raised(suggestion: TaskPreset) -> None:
    request = PromptRequest(task="suggestion", query="tea", num_queries=50)
    result = _enforce(suggestion, request, [f"q{i}" for i in range(10)])
    assert len(result.queries) == 6
    assert result.codes == ["bad_num_queries", "too_many"]
    assert "num_queries=50 is outside the range 1..6" in result.problems[0].message


def test_too_few_is_reported(clarification: TaskPreset) -> None:
    request = PromptRequest(task="clarification", query="write a poem")
    result = _enforce(clarification, request, ["spring", "sea"])
    assert result.queries == ["spring", "sea"] and result.codes == ["too_few"]


@pytest.mark.parametrize(
    "copy",
    [
        "what is green tea",
        "What is green tea?",
        "  WHAT   is green TEA ",
        "green tea what is",
        "what is green teas",
    ],
)
def test_copies_of_the_user_query_are_dropped(suggestion: TaskPreset, copy: str) -> None:
    request = PromptRequest(task="suggestion", query="what is green tea")
    result = _enforce(suggestion, request, [copy, "green tea benefits"])
    assert result.queries == ["green tea benefits"] and result.codes == ["copies_query"]


def test_near_copy_threshold() -> None:
    assert is_near_copy("weather in paris", "weather paris", 0.8)
    assert not is_near_copy("weather in paris", "weather paris", 0.95)
    assert not is_near_copy("", "tea")


def test_completions_must_start_with_the_prefix(completion: TaskPreset) -> None:
    request = PromptRequest(task="completion", query="wea", side_info=SideInfo(prefix="Wea"))
    result = _enforce(completion, request, ["weather today", "Weapons", "sea weather", "wea"])
    assert result.queries == ["weather today", "Weapons"]
    assert result.codes == ["missing_prefix", "copies_query"]


def test_the_prefix_defaults_to_the_query(completion: TaskPreset) -> None:
    request = PromptRequest(task="completion", query="how to")
    result = _enforce(completion, request, ["how to cook rice", "why is the sky blue"])
    assert result.queries == ["how to cook rice"] and result.codes == ["missing_prefix"]


def test_hints_must_come_from_history(hint: TaskPreset) -> None:
    side = SideInfo(history=["Cheap flights to Rome", "rome hotels", "tea"])
    request = PromptRequest(task="hint", query="tea", side_info=side)
    result = _enforce(hint, request, ["Paris hotels", "cheap  flights to rome", "rome hotels"])
    assert result.queries == ["cheap  flights to rome"]
    assert result.codes == ["not_in_history", "too_many"]
    copy = _enforce(hint, request, ["tea"])
    assert copy.queries == [] and copy.codes == ["copies_query", "too_few"]


def test_length_and_duplicates_are_checked_for_unparsed_candidates(
    suggestion: TaskPreset,
) -> None:
    request = PromptRequest(task="suggestion", query="tea")
    long = "x" * 41
    result = _enforce(suggestion, request, ["matcha", "Mat cha", long, " ", "oolong"])
    assert result.queries == ["matcha", "oolong"]
    assert result.codes == ["duplicate", "too_long", "blank_item"]


def test_enforce_keeps_parse_problems_and_aux_texts(clarification: TaskPreset) -> None:
    request = PromptRequest(task="clarification", query="write a poem")
    text = "guide: pick one\nprefix: write a poem about\n" + " <SEP> ".join(
        ["spring", "the sea", "spring", "a city", "Write a poem", "love"]
    )
    result = enforce(clarification, request, parse(clarification, text))
    assert result.aux_texts == {"guide": "pick one", "prefix": "write a poem about"}
    assert result.queries == ["spring", "the sea", "a city", "love"]
    assert result.codes == ["duplicate", "copies_query"]
