"""The parser reads any model output: repairs what it can, reports it, and never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gqr_serving.prompt import PromptRequest, TaskPreset, load_preset, parse, render
from gqr_serving.prompt.parser import MAX_ITEMS, MAX_OUTPUT_CHARS


def test_the_expected_format(suggestion: TaskPreset) -> None:
    result = parse(suggestion, "green tea benefits <SEP> matcha latte <SEP> oolong tea")
    assert result.queries == ["green tea benefits", "matcha latte", "oolong tea"]
    assert result.ok and result.aux_texts == {}


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("a<SEP>b<sep>c", []),
        ("a < SEP > b <SEP>c", []),
        ("a <SEP> b <SEP> c <SEP>", ["blank_item"]),
        ("a <SEP> <SEP> b <SEP> c", ["blank_item"]),
        ("a <SEP>\nb <SEP>\nc", []),
        ("a\n<SEP> b\n<SEP> c", []),
        ("a\nb\nc", ["no_separator"]),
        ("1. a\n2. b\n3. c", ["no_separator", "numbering_removed"]),
        ("1) a <SEP> 2) b <SEP> 3) c", ["numbering_removed"]),
        ("- a\n* b\n• c", ["no_separator", "numbering_removed"]),
        ("\"a\" <SEP> 'b' <SEP> “c”", ["quotes_removed"] * 3),
        ("**a** <SEP> b <SEP> c", ["quotes_removed"]),
        ("a <SEP> A <SEP> b <SEP>  B  <SEP> c", ["duplicate", "duplicate"]),
        ("Here are some suggestions:\na\nb\nc", ["preamble_dropped", "no_separator"]),
        ("Sure!\na <SEP> b <SEP> c\n\nHope it helps.", ["preamble_dropped", "trailing_text"]),
        ("a <SEP>\n\nb <SEP> c", []),
        ("a <SEP> b <SEP> c</response>ignored", ["trailing_text"]),
        ("a <SEP> b <SEP> c<|im_end|>", []),
        ("<response>\na <SEP> b <SEP> c", []),
        ("a &amp; b <SEP> b &lt;c&gt; <SEP> c", []),
        ("a\x00 <SEP> b\x07 <SEP> c", ["control_chars"]),
        ("a\r\nb\r\nc", ["no_separator"]),
    ],
)
def test_repairs_and_reports(suggestion: TaskPreset, text: str, codes: list[str]) -> None:
    result = parse(suggestion, text)
    expected = ["a & b", "b <c>", "c"] if "&amp;" in text else ["a", "b", "c"]
    assert result.queries == expected
    assert sorted(result.codes) == sorted(codes)


def test_an_echoed_prompt_is_dropped(suggestion: TaskPreset) -> None:
    prompt = render(suggestion, PromptRequest(task="suggestion", query="tea <SEP> x"))
    result = parse(suggestion, prompt + "green tea <SEP> matcha <SEP> oolong")
    assert result.queries == ["green tea", "matcha", "oolong"]
    assert result.codes == ["echoed_prompt"]
    user = prompt.removesuffix("<response>\n")
    assert parse(suggestion, user + "\ngreen tea <SEP> matcha").queries == ["green tea", "matcha"]


def test_a_line_after_the_list_without_sep_is_trailing_text(suggestion: TaskPreset) -> None:
    result = parse(suggestion, "a <SEP> b\nThese cover tea types.")
    assert result.queries == ["a", "b"] and result.codes == ["trailing_text"]


def test_a_lone_numbered_query_is_kept_in_a_list(suggestion: TaskPreset) -> None:
    result = parse(suggestion, "1. FC Köln tickets <SEP> bundesliga table <SEP> koln weather")
    assert result.queries[0] == "1. FC Köln tickets"


def test_overlong_items_are_dropped_or_cut_per_preset(
    suggestion: TaskPreset, completion: TaskPreset
) -> None:
    long = "how to brew the perfect cup of japanese green tea at home"  # > 40 chars
    dropped = parse(suggestion, f"a <SEP> {long}")
    assert dropped.queries == ["a"] and dropped.codes == ["too_long"]
    words = " ".join(f"w{i}" for i in range(20))  # 20 words > 12
    cut = parse(completion, f"a <SEP> {words}")
    assert cut.queries == ["a", " ".join(f"w{i}" for i in range(12))]
    assert cut.codes == ["truncated"]
    cjk = "绿" * 70
    assert parse(completion, cjk).queries == ["绿" * 60]


def test_auxiliary_texts(clarification: TaskPreset) -> None:
    text = (
        "guide: What should the poem be about?\nPrefix: write a poem about\n"
        "suffix: in five lines\nspring <SEP> the sea <SEP> my mother <SEP> a city night"
    )
    result = parse(clarification, text)
    assert result.aux_texts == {
        "guide": "What should the poem be about?",
        "prefix": "write a poem about",
        "suffix": "in five lines",
    }
    assert result.queries == ["spring", "the sea", "my mother", "a city night"]
    assert result.ok


def test_missing_and_repeated_auxiliary_texts(clarification: TaskPreset) -> None:
    result = parse(clarification, "guide: pick one\nguide: again\nspring <SEP> sea")
    assert result.aux_texts == {"guide": "pick one"}
    assert result.codes == ["duplicate_aux", "missing_aux"]  # prefix; suffix is optional
    assert result.queries == ["spring", "sea"]


def test_a_label_is_only_an_aux_line_for_presets_that_declare_it(suggestion: TaskPreset) -> None:
    assert parse(suggestion, "guide: tea\nmatcha").queries == ["guide: tea", "matcha"]


@pytest.mark.parametrize("text", ["", "   \n\t ", None, b"", "<response>", "</response>"])
def test_empty_output(clarification: TaskPreset, text: str | bytes | None) -> None:
    result = parse(clarification, text)
    assert result.queries == [] and result.aux_texts == {}
    assert "empty_output" in result.codes and "missing_aux" in result.codes


def test_bytes_are_decoded(suggestion: TaskPreset) -> None:
    result = parse(suggestion, "a <SEP> b \xff".encode("latin-1"))
    assert result.queries == ["a", "b \ufffd"] and result.codes == ["not_text"]


def test_huge_output_is_capped(suggestion: TaskPreset) -> None:
    result = parse(suggestion, "tea <SEP> " * 100_000)
    assert result.codes[:2] == ["output_capped", "too_many_items"]
    assert result.queries == ["tea"]
    many = " <SEP> ".join(f"q{i}" for i in range(1000))
    assert len(many) < MAX_OUTPUT_CHARS
    result = parse(suggestion, many)
    assert "too_many_items" in result.codes and len(result.queries) <= MAX_ITEMS


def test_one_giant_line_is_cheap(suggestion: TaskPreset) -> None:
    result = parse(suggestion, "x" * (MAX_OUTPUT_CHARS * 4))
    assert result.queries == [] and "too_long" in result.codes


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_never_raises_on_random_text(text: str) -> None:
    for name in ("suggestion", "clarification", "hint", "completion"):
        preset = load_preset(name)
        result = parse(preset, text)
        for query in result.queries:
            assert query == query.strip() and query and "\n" not in query
            assert len(query) <= preset.constraints.max_chars


markers = st.sampled_from(
    ["<SEP>", "\n", "1. ", "- ", '"', "guide:", "<response>", "</response>", "&amp;", "a", " "]
)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(markers | st.text(max_size=8), max_size=30))
def test_never_raises_on_marker_soup(parts: list[str]) -> None:
    result = parse(load_preset("clarification"), "".join(parts))
    keys = ["".join(q.casefold().split()) for q in result.queries]
    assert len(keys) == len(set(keys))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400))
def test_never_raises_on_bytes(data: bytes) -> None:
    result = parse(load_preset("suggestion"), data)
    assert result.codes[0] == "not_text"


def test_lone_surrogates_are_removed(suggestion: TaskPreset) -> None:
    result = parse(suggestion, "a\ud800 <SEP> b")
    assert result.queries == ["a", "b"] and result.codes == ["control_chars"]
