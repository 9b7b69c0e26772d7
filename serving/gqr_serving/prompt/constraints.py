"""Enforce a preset's constraints on parsed queries, for one request: never raises.

The parser repairs the *shape* of a response; this checks what the queries *say* against the
request: N (the request's override or the preset default), length, the typed prefix, no copy
of the user query, hint queries taken from the history. Run it after :func:`parse`, and on
candidates from anywhere else (beam search, COR fallback) before they are shown or trained on.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections import Counter

from gqr_serving.prompt.presets import TaskPreset
from gqr_serving.prompt.request import PromptRequest
from gqr_serving.prompt.result import ParseResult, Problem, problem


def enforce(preset: TaskPreset, request: PromptRequest, result: ParseResult) -> ParseResult:
    """``result`` with the queries that break a constraint dropped, and why, appended."""
    problems = list(result.problems)
    n = _num_queries(preset, request, problems)
    c = preset.constraints
    prefix = request.side_info.prefix or request.query
    history = {_key(h) for h in request.side_info.history}
    kept: list[str] = []
    seen: set[str] = set()
    for query in result.queries:
        key = _key(query)
        if not key:
            problems.append(problem("blank_item", "dropped an empty query", query))
        elif key in seen:
            problems.append(problem("duplicate", "dropped a repeated query", query))
        elif len(query) > c.max_chars or len(query.split()) > c.max_words:
            limits = f"{c.max_chars} chars / {c.max_words} words"
            problems.append(problem("too_long", f"dropped a query over {limits}", query))
        elif c.must_start_with_prefix and not _starts_with(query, prefix):
            problems.append(problem("missing_prefix", f"does not start with {prefix!r}", query))
        elif c.exclude_user_query and is_near_copy(query, request.query, c.near_copy_threshold):
            problems.append(problem("copies_query", "a near copy of the user query", query))
        elif c.must_come_from_history and key not in history:
            problems.append(problem("not_in_history", "not in the session history", query))
        else:
            seen.add(key)
            kept.append(query)
    if len(kept) > n:
        problems.append(problem("too_many", f"kept the first {n} of {len(kept)} queries"))
        kept = kept[:n]
    if len(kept) < preset.num_queries.min:
        problems.append(
            problem(
                "too_few",
                f"{len(kept)} queries left; preset {preset.name!r} wants "
                f"{preset.num_queries.min}..{preset.num_queries.max}",
            )
        )
    return ParseResult(queries=kept, aux_texts=result.aux_texts, problems=problems)


def is_near_copy(query: str, user_query: str, threshold: float = 0.9) -> bool:
    """True when ``query`` equals ``user_query`` up to case, spaces, punctuation or word order,
    or their similarity ratio reaches ``threshold``."""
    a, b = _words(query), _words(user_query)
    if not a or not b:
        return False
    if a == b or sorted(a) == sorted(b):
        return True
    sa, sb = " ".join(a), " ".join(b)
    # ratio() <= quick_ratio() <= real_quick_ratio() (difflib's own bounds, same formula): when
    # a bound is under the threshold the ratio is too, without the O(n*m) matching.
    length = len(sa) + len(sb)
    if 2.0 * min(len(sa), len(sb)) / length < threshold:
        return False
    if 2.0 * (Counter(sa) & Counter(sb)).total() / length < threshold:
        return False
    return difflib.SequenceMatcher(None, sa, sb).ratio() >= threshold


def _num_queries(preset: TaskPreset, request: PromptRequest, problems: list[Problem]) -> int:
    try:
        return preset.resolve_num_queries(request.num_queries)
    except ValueError as exc:
        q = preset.num_queries
        problems.append(problem("bad_num_queries", f"{exc}; clamped"))
        return min(max(request.num_queries or q.default, q.min), q.max)


def _key(text: str) -> str:
    return "".join(text.casefold().split())


class _PunctuationToSpace(dict[int, int]):
    """``str.translate`` table: punctuation (category P*) -> space, anything else kept;
    filled on first sight of a code point (bounded: past the cap it computes, not stores)."""

    CAP = 8192

    def __missing__(self, code: int) -> int:
        out = 32 if unicodedata.category(chr(code)).startswith("P") else code
        if len(self) < self.CAP:
            self[code] = out
        return out


_PUNCTUATION = _PunctuationToSpace()


def _words(text: str) -> list[str]:
    # Punctuation is noise for "is this the same query": "weather paris?" == "Weather, Paris".
    return text.translate(_PUNCTUATION).casefold().split()


def _starts_with(query: str, prefix: str) -> bool:
    return " ".join(query.casefold().split()).startswith(" ".join(prefix.casefold().split()))
