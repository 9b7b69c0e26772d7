from __future__ import annotations

from gqr_training.ctr.inputs import Layout, encode, pad

CLS, SEP, PAD = 2, 3, 0
LAYOUT = Layout(cls_id=CLS, sep_id=SEP, pad_id=PAD, max_length=64, max_query_tokens=16)
USER = [10, 11]
SHOWN = [[20, 21], [30], [40, 41, 42]]


def test_base_golden() -> None:
    e = encode(LAYOUT, "base", USER, SHOWN, 2)
    assert e.input_ids == [CLS, 10, 11, SEP, 40, 41, 42, SEP]
    assert e.domain_ids == [0, 0, 0, 0, 1, 1, 1, 1]
    assert e.token_type_ids == [0, 0, 0, 0, 1, 1, 1, 1]


def test_pid_golden_marks_the_position_of_k() -> None:
    e = encode(LAYOUT, "pid", USER, SHOWN, 2)
    assert e.input_ids == [CLS, 10, 11, SEP, 40, 41, 42, SEP]
    assert e.domain_ids == [0, 0, 0, 0, 3, 3, 3, 3]
    assert encode(LAYOUT, "pid", USER, SHOWN, 0).domain_ids == [0, 0, 0, 0, 1, 1, 1]


def test_ctx_golden_carries_the_queries_above() -> None:
    e = encode(LAYOUT, "ctx", USER, SHOWN, 2)
    assert e.input_ids == [CLS, 10, 11, 20, 21, 30, SEP, 40, 41, 42, SEP]
    assert e.domain_ids == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3]
    assert e.token_type_ids == [0] * 7 + [1] * 4
    # The first query has no context: ctx degenerates to pid.
    assert encode(LAYOUT, "ctx", USER, SHOWN, 0) == encode(LAYOUT, "pid", USER, SHOWN, 0)


def test_ctx_truncates_the_oldest_context_first() -> None:
    small = Layout(CLS, SEP, PAD, max_length=10, max_query_tokens=16)
    e = encode(small, "ctx", USER, SHOWN, 2)
    assert len(e.input_ids) == 10
    assert e.input_ids == [CLS, 10, 11, 21, 30, SEP, 40, 41, 42, SEP]
    assert e.domain_ids == [0, 0, 0, 1, 2, 2, 3, 3, 3, 3]


def test_pad_right_pads_with_mask() -> None:
    a = encode(LAYOUT, "base", USER, SHOWN, 1)
    b = encode(LAYOUT, "base", USER, SHOWN, 2)
    out = pad([a, b], PAD)
    assert out["input_ids"][0] == [CLS, 10, 11, SEP, 30, SEP, PAD, PAD]
    assert out["attention_mask"][0] == [1, 1, 1, 1, 1, 1, 0, 0]
    assert out["domain_ids"][0][-2:] == [0, 0]


def test_match_ids_mark_words_shared_with_the_user_query_and_the_context() -> None:
    user, shown = [10, 11], [[10, 21], [30], [11, 21, 42]]
    e = encode(LAYOUT, "ctx", user, shown, 2)
    assert e.input_ids == [CLS, 10, 11, 10, 21, 30, SEP, 11, 21, 42, SEP]
    # user side: 10 and 11 appear in the shown queries; context: 10 is the user's (+1), 21 is
    # in q_k (+2); q_k: 11 is the user's (+1), 21 is in the context (+2); specials 0.
    assert e.match_ids == [0, 1, 1, 1, 2, 0, 0, 1, 2, 0, 0]
    base = encode(LAYOUT, "base", user, shown, 2)
    assert base.match_ids == [0, 0, 1, 0, 1, 0, 0, 0]
    assert len(pad([e, base], PAD)["match_ids"][1]) == len(e.input_ids)
