"""render_response writes the exact target completion; parse reads it back unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gqr_serving.prompt import TaskPreset, load_preset, parse, render_response


def test_query_line(suggestion: TaskPreset) -> None:
    text = render_response(suggestion, ["green tea benefits", "matcha", "oolong"])
    assert text == "green tea benefits <SEP> matcha <SEP> oolong"


def test_aux_lines_come_first_in_preset_order(clarification: TaskPreset) -> None:
    aux = {"suffix": "in five lines", "guide": "What about?", "prefix": "write a poem about"}
    text = render_response(clarification, ["spring", "the sea", "love", "a city"], aux)
    assert text == (
        "guide: What about?\nprefix: write a poem about\nsuffix: in five lines\n"
        "spring <SEP> the sea <SEP> love <SEP> a city"
    )


def test_an_empty_optional_aux_text_is_left_out(clarification: TaskPreset) -> None:
    aux = {"guide": "Pick", "prefix": "write", "suffix": ""}
    text = render_response(clarification, ["a", "b", "c", "d"], aux)
    assert "suffix" not in text
    assert parse(clarification, text).aux_texts == {"guide": "Pick", "prefix": "write"}


def test_single_query(hint: TaskPreset) -> None:
    assert render_response(hint, ["rome hotels"]) == "rome hotels"


@pytest.mark.parametrize(
    ("queries", "aux", "expected"),
    [
        ([], None, "must not be empty"),
        (["a", "b", "c", "d", "e", "f", "g"], None, "at most 6"),
        (["a <SEP> b"], None, "cannot render"),
        (["a\nb"], None, "cannot render"),
        (["  a"], None, "cannot render"),
        (["1. a", "2. b"], None, "cannot render"),
        (['"a"'], None, "cannot render"),
        (["a &amp; b"], None, "cannot render"),
        (["a", "A"], None, "duplicate"),
        (["x" * 41], None, "too_long"),
        (["a"], {"guide": "g"}, "not declared"),
    ],
)
def test_unrepresentable_targets_are_refused(
    suggestion: TaskPreset, queries: list[str], aux: dict[str, str] | None, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        render_response(suggestion, queries, aux)


def test_required_aux_texts_are_required(clarification: TaskPreset) -> None:
    with pytest.raises(ValueError, match=r"requires aux_texts \['prefix'\]"):
        render_response(clarification, ["a", "b", "c", "d"], {"guide": "g"})
    with pytest.raises(ValueError, match="cannot render"):
        render_response(clarification, ["prefix: x"], {"guide": "g", "prefix": "p"})


def _norm(text: str) -> str:
    return " ".join(text.split())


def _key(text: str) -> str:
    return "".join(text.casefold().split())


# Valid target text: words of letters (any script), digits and punctuation, single-spaced,
# each starting with a letter. No "<" (no tag or <SEP> can form), no ";" (no entity), no ":"
# (no "guide:" label), no leading digit or quote (no list marker) - what render_response
# refuses is covered by the tests above.
word = st.text(
    alphabet=st.characters(categories=["L", "N"]) | st.sampled_from("?!,.'&>-#"),
    min_size=1,
    max_size=8,
).filter(lambda w: w[0].isalpha())
phrase = st.lists(word, min_size=1, max_size=4).map(" ".join)


def _queries(preset: TaskPreset) -> st.SearchStrategy[list[str]]:
    c = preset.constraints
    fits = phrase.filter(lambda q: len(q) <= c.max_chars and len(q.split()) <= c.max_words)
    return st.lists(fits, min_size=1, max_size=preset.num_queries.max, unique_by=_key)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_round_trip_for_every_preset(data: st.DataObject) -> None:
    preset = load_preset(data.draw(st.sampled_from(["suggestion", "hint", "completion"])))
    queries = data.draw(_queries(preset))
    assert parse(preset, render_response(preset, queries)).queries == queries


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_round_trip_with_aux_texts(data: st.DataObject) -> None:
    preset = load_preset("clarification")
    queries = data.draw(_queries(preset))
    aux: dict[str, str] = {}
    for spec in preset.aux_texts:
        if spec.required or data.draw(st.booleans()):
            aux[spec.name] = data.draw(phrase)[: spec.max_chars].rstrip()
    result = parse(preset, render_response(preset, queries, aux))
    assert (result.queries, result.aux_texts, result.problems) == (queries, aux, [])


@settings(max_examples=200, deadline=None)
@given(queries=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=6))
def test_any_target_round_trips_or_is_refused(queries: list[str]) -> None:
    preset = load_preset("suggestion")
    try:
        text = render_response(preset, queries)
    except ValueError:
        return
    assert parse(preset, text).queries == queries
