"""Policies are measured as the gateway serves them: post-filtered, topped up from COR."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from testsupport.toyworld import PRESET, known_scorer

from gqr_serving.prompt import PromptRequest, SideInfo
from gqr_training.align.data import make_task
from gqr_training.align.metrics import evaluate, served


class Scripted:
    """Answers every prompt with the same text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def complete(
        self, texts: Sequence[str], n: int, t: float, m: int, stop: bool
    ) -> list[list[str]]:
        return [[self.text] * n for _ in texts]


def task(cooccurring: list[str]) -> Any:
    side = SideInfo(cooccurring=cooccurring)
    return make_task(PRESET, PromptRequest(task="suggestion", query="green tea", side_info=side))


def test_a_repeated_query_is_topped_up_from_cor_like_the_gateway_does() -> None:
    t = task(["green tea prices", "green tea benefits", "matcha"])
    # The repeat is dropped by the post-filter; COR fills the slot, skipping what is shown.
    assert served(PRESET, t, ["green tea prices"]) == [
        "green tea prices",
        "green tea benefits",
        "matcha",
    ]
    assert served(PRESET, task([]), ["green tea prices"]) == ["green tea prices"]
    full = ["green tea reviews", "green tea history", "green tea origin"]
    assert served(PRESET, t, full) == full


def test_evaluate_reports_what_the_model_wrote_beside_what_was_served() -> None:
    t = task(["green tea benefits", "green tea reviews"])
    engine: Any = Scripted("green tea prices <SEP> green tea prices <SEP> green tea prices")
    m = evaluate(engine, PRESET, [t], known_scorer)
    assert m["llm_queries"] == 1 and m["llm_full_lists"] == 0
    assert m["mean_queries"] == 3 and m["full_lists"] == 1
    alone: Any = Scripted("green tea prices <SEP> green tea benefits <SEP> green tea reviews")
    assert evaluate(alone, PRESET, [task([])], known_scorer)["llm_full_lists"] == 1
