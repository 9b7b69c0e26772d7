"""``ParseResult`` and ``Problem``: what the parser and the constraint check return.

Neither ever raises on bad model output; everything they fixed or dropped is a ``Problem``
with a machine-readable ``code`` (stable, for metrics and tests) and a human ``message``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ProblemCode = Literal[
    # parse: the text as a whole
    "not_text",  # the output was not a str (None, bytes...): converted
    "empty_output",  # nothing but whitespace
    "output_capped",  # over the size cap: the rest was ignored
    "control_chars",  # control characters removed
    "echoed_prompt",  # prompt text or the response header before the answer: dropped
    "preamble_dropped",  # chatter before the query list ("Here are...:"): dropped
    "trailing_text",  # text after the query list or an end marker: dropped
    "no_separator",  # no <SEP>: items were split on line breaks
    "too_many_items",  # over the item cap: the rest was ignored
    # parse: one item
    "numbering_removed",  # "1." "2)" "-" "*" "•" list markers stripped
    "quotes_removed",  # surrounding quotes or markdown emphasis stripped
    "blank_item",  # an empty item between separators: dropped
    "duplicate",  # same as an earlier query ignoring case and spaces: dropped
    "truncated",  # over the preset's length limit: cut (overlong: truncate)
    "too_long",  # over the preset's length limit: dropped (overlong: drop)
    # parse: auxiliary texts
    "missing_aux",  # a required auxiliary text is absent or empty
    "duplicate_aux",  # an auxiliary text given twice: the first one kept
    "aux_truncated",  # an auxiliary text over its length limit: cut
    # enforce: constraints
    "copies_query",  # equal to, or a near copy of, the user query: dropped
    "missing_prefix",  # does not start with the typed prefix: dropped
    "not_in_history",  # not an item of the session history: dropped
    "too_many",  # more than N kept: the tail was dropped
    "too_few",  # fewer than the preset's minimum kept
    "bad_num_queries",  # the request's num_queries was outside the preset's range: clamped
]


class Problem(BaseModel):
    """One thing that was wrong with a response, and what was done about it."""

    model_config = ConfigDict(frozen=True)

    code: ProblemCode
    message: str
    item: str | None = Field(None, description="The offending item, shortened, if any.")


class ParseResult(BaseModel):
    """Queries and auxiliary texts read from one response, plus the problems found."""

    model_config = ConfigDict(frozen=True)

    queries: list[str] = Field(default_factory=list)
    aux_texts: dict[str, str] = Field(default_factory=dict)
    problems: list[Problem] = Field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        """The problem codes, in order found (handy for metrics and asserts)."""
        return [p.code for p in self.problems]

    @property
    def ok(self) -> bool:
        return not self.problems


def problem(code: ProblemCode, message: str, item: str | None = None) -> Problem:
    short = None if item is None else (item if len(item) <= 200 else item[:197] + "...")
    return Problem(code=code, message=message, item=short)
