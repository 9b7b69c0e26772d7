from __future__ import annotations

import re

import pytest
from kserve import InferInput, InferRequest
from kserve.errors import InvalidInput

from gqr_training.ctr.server import parse_v1, parse_v2


def v2(query: list[object], queries: list[object], shape: list[int]) -> InferRequest:
    return InferRequest(
        model_name="ctr",
        infer_inputs=[
            InferInput("query", [len(query)], "BYTES", query),
            InferInput("queries", shape, "BYTES", queries),
        ],
    )


def test_v1_valid() -> None:
    request, pairs = parse_v1(
        {"instances": [{"query": "q", "queries": ["a", "b"], "component": "singleChoice"}]}, 4
    )
    assert pairs == [("q", ["a", "b"])]
    assert [i.component for i in request.instances] == ["singleChoice"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "instances"),
        ({"instances": []}, "instances"),
        ({"instances": [{"queries": ["a"]}]}, "instances[0].query"),
        ({"instances": [{"query": "q"}]}, "instances[0].queries"),
        ({"instances": [{"query": "q", "queries": []}]}, "instances[0].queries"),
        ({"instances": [{"query": "q", "queries": ["a"] * 9}]}, "instances[0].queries"),
        ({"instances": [{"query": "q" * 10_000, "queries": ["a"]}]}, "instances[0].query"),
        (
            {"instances": [{"query": "q", "queries": ["a"], "component": "x"}]},
            "instances[0].component",
        ),
        (
            {"instances": [{"query": "q", "queries": ["a"], "user_key": 7}]},
            "instances[0].user_key",
        ),
        ({"instances": [{"query": "q", "queries": ["a"]}] * 1025}, "instances"),
    ],
)
def test_v1_errors_name_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_v1(body, 4)
    # The field, then its value where it had one: "instances[0].component='x': ..."
    assert re.match(re.escape(field) + "[=:]", str(err.value)), str(err.value)


def test_v2_valid_and_errors() -> None:
    pairs, _ = parse_v2(v2(["q1", "q2"], [["a", "b"], ["c", "d"]], [2, 2]), 4)
    assert pairs == [("q1", ["a", "b"]), ("q2", ["c", "d"])]
    with pytest.raises(InvalidInput, match=r"^inputs.queries: shape"):
        parse_v2(v2(["q"], ["a"], [1]), 4)
    with pytest.raises(InvalidInput, match=r"^inputs\[0\].queries: has 5"):
        parse_v2(v2(["q"], [["a"] * 5], [1, 5]), 4)
    with pytest.raises(InvalidInput, match=r"^inputs.queries\[1\]: is not valid UTF-8"):
        parse_v2(v2(["q"], [[b"a", b"\xff\xfe"]], [1, 2]), 4)
    with pytest.raises(InvalidInput, match=r"^inputs.query: missing"):
        parse_v2(InferRequest("ctr", [InferInput("queries", [1, 1], "BYTES", [["a"]])]), 4)
