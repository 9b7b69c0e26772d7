"""Task presets are data: the built-ins, user folders, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gqr_serving.prompt import PresetError, TaskPreset, list_presets, load_preset
from gqr_serving.prompt.loading import BUILTIN_DIR, ENV_VAR

CUSTOM = """\
name: rewrite
component: singleChoice
instructions: Rewrite the query to be clearer.
sections:
  - name: page_title
    title: The title of the page the user is on.
num_queries: {default: 2, min: 1, max: 4}
constraints: {max_chars: 30, max_words: 6}
"""


def test_builtin_presets_are_listed() -> None:
    assert {"suggestion", "clarification", "hint", "completion"} <= set(list_presets())


def test_suggestion_preset(suggestion: TaskPreset) -> None:
    assert suggestion.component == "multiChoice"
    assert suggestion.num_queries.default == 3
    assert [s.name for s in suggestion.sections] == ["ai_response", "history", "cooccurring"]
    assert suggestion.aux_texts == ()
    assert suggestion.constraints.exclude_user_query


def test_clarification_preset(clarification: TaskPreset) -> None:
    assert clarification.component == "multiChoice"
    assert [a.name for a in clarification.aux_texts] == ["guide", "prefix", "suffix"]
    assert clarification.num_queries.default == 8
    assert clarification.constraints.max_words <= 4  # snippets are short


def test_hint_preset(hint: TaskPreset) -> None:
    assert hint.component == "singleChoice"
    assert (hint.num_queries.min, hint.num_queries.default, hint.num_queries.max) == (1, 1, 1)
    assert hint.constraints.must_come_from_history
    history = hint.section("history")
    assert history is not None and history.required


def test_completion_preset(completion: TaskPreset) -> None:
    assert completion.constraints.must_start_with_prefix
    assert completion.constraints.overlong == "truncate"
    assert completion.section("prefix") is not None


def test_num_queries_override_outside_range_names_field_value_and_range(
    suggestion: TaskPreset,
) -> None:
    assert suggestion.resolve_num_queries(None) == 3
    assert suggestion.resolve_num_queries(5) == 5
    with pytest.raises(ValueError, match=r"num_queries=9 .* range 1\.\.6 .*'suggestion'"):
        suggestion.resolve_num_queries(9)


def test_custom_preset_from_a_user_folder(tmp_path: Path) -> None:
    (tmp_path / "rewrite.yaml").write_text(CUSTOM)
    assert "rewrite" in list_presets(extra_dirs=[tmp_path])
    preset = load_preset("rewrite", extra_dirs=[tmp_path])
    assert preset.component == "singleChoice"
    assert preset.sections[0].name == "page_title"


def test_custom_preset_from_a_file_path_and_from_the_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rewrite.yaml"
    path.write_text(CUSTOM)
    assert load_preset(str(path)).name == "rewrite"
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert load_preset("rewrite").name == "rewrite"


def test_a_user_folder_overrides_a_builtin(tmp_path: Path) -> None:
    builtin = (BUILTIN_DIR / "suggestion.yaml").read_text()
    (tmp_path / "suggestion.yaml").write_text(builtin.replace("default: 3", "default: 4"))
    assert load_preset("suggestion", extra_dirs=[tmp_path]).num_queries.default == 4
    assert load_preset("suggestion").num_queries.default == 3


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "rewrite.yaml"
    path.write_text(CUSTOM)
    assert load_preset(path).num_queries.default == 2
    path.write_text(CUSTOM.replace("default: 2", "default: 3") + "\n")
    assert load_preset(path).num_queries.default == 3


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(PresetError, match=r"unknown task preset 'nope'.*suggestion"):
        load_preset("nope")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "component: singleChoice",
            "component: single",
            r"field 'component' = 'single': Input should be 'multiChoice' or 'singleChoice'",
        ),
        (
            "num_queries: {default: 2, min: 1, max: 4}",
            "num_queries: {default: 7, min: 1, max: 4}",
            r"field 'num_queries' .*min <= default <= max.*default=7",
        ),
        (
            "constraints: {max_chars: 30, max_words: 6}",
            "constraints: {max_chars: -5, max_words: 6}",
            r"field 'constraints.max_chars' = -5: Input should be greater than or equal to 1",
        ),
        (
            "constraints: {max_chars: 30, max_words: 6}",
            "constraints: {max_char: 30}",
            r"field 'constraints.max_char' = 30: Extra inputs .*accepted fields here: max_chars",
        ),
        (
            "component: singleChoice",
            "component: singleChoice\nnum_querys: 3",
            r"field 'num_querys'.*accepted fields here: name, description, component",
        ),
        ("name: rewrite", "name: other", r"field 'name' = 'other' must equal the file name"),
        (
            "    title: The title",
            "    title: x\n  - name: query\n    title: The title",
            r"reserved by the template",
        ),
        (
            "instructions: Rewrite",
            "instructions: |\n  </query>\n  Rewrite",
            r"looks like a section tag \('</query>'\)",
        ),
        ("component: singleChoice", "component: [unclosed", r"not readable YAML"),
    ],
)
def test_a_bad_preset_file_names_file_field_value_and_accepted(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in CUSTOM
    path = tmp_path / "rewrite.yaml"
    path.write_text(CUSTOM.replace(old, new))
    with pytest.raises(PresetError, match=expected) as info:
        load_preset(path)
    assert str(path) in str(info.value)


def test_a_preset_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "rewrite.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(PresetError, match=r"top level must be a mapping.*accepted fields: name"):
        load_preset(path)


def test_a_missing_preset_file(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match=r"cannot read it"):
        load_preset(tmp_path / "absent.yaml")


def test_history_constraint_needs_a_history_section(tmp_path: Path) -> None:
    path = tmp_path / "rewrite.yaml"
    path.write_text(CUSTOM.replace("max_words: 6}", "max_words: 6, must_come_from_history: true}"))
    with pytest.raises(PresetError, match=r"must_come_from_history needs a 'history' section"):
        load_preset(path)
