"""Read queries and auxiliary texts out of any model output: total, never raises.

The expected answer is ``name: text`` auxiliary lines, then ``q1 <SEP> q2 <SEP> ... qN``. Real
output strays from it; what is recognised and repaired (each reported as a ``Problem``):
an echoed prompt or ``<response>`` header, chatter before the list ("Here are...:"), text
after it or after an end marker, no ``<SEP>`` (split on line breaks instead), blank items,
list markers ("1." "2)" "-" "*" "•"), surrounding quotes, entities copied from the escaped
prompt, duplicates (ignoring case and spaces), over-long items (cut or dropped, per preset),
missing auxiliary texts. Work is bounded: the text is capped at ``MAX_OUTPUT_CHARS`` and the
item list at ``MAX_ITEMS``, and every regex is linear.
"""

from __future__ import annotations

import math
import re

from gqr_serving.prompt.escaping import unescape
from gqr_serving.prompt.markers import SEP_RE
from gqr_serving.prompt.presets import MAX_QUERIES, TaskPreset
from gqr_serving.prompt.result import ParseResult, Problem, problem

MAX_OUTPUT_CHARS = 65_536
MAX_ITEMS = 2 * MAX_QUERIES

_LINE_BREAKS_RE = re.compile(r"\r\n?|[\u2028\u2029\x85]")
# Controls other than tab and newline, and lone surrogates (from a lossy decode).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_RESPONSE_OPEN_RE = re.compile(r"<[ \t]*response[ \t]*>", re.IGNORECASE)
_CLOSING_TAG_LINE_RE = re.compile(r"^[ \t]*</[a-z][a-z0-9_]{0,39}>[ \t]*$", re.MULTILINE)
# Where an answer ends: our closing header, or a chat model's special end token.
_END_RE = re.compile(r"<[ \t]*/[ \t]*response[ \t]*>|<\|[a-z_]{1,30}\|>|</s>", re.IGNORECASE)
_NUMBER_RE = re.compile(r"^[(\[]?\d{1,3}[.):\]][ \t]+")
_BULLET_RE = re.compile(r"^[-*•·‣▪◦][ \t]+")
# Surrounding pairs an LLM wraps a query in: ASCII, typographic and CJK quotes, emphasis.
_PAIRS: tuple[tuple[str, str], ...] = (
    ("**", "**"),
    ('"', '"'),
    ("'", "'"),
    ("`", "`"),
    ("\u201c", "\u201d"),  # double curly quotes
    ("\u2018", "\u2019"),  # single curly quotes
    ("\u300c", "\u300d"),  # CJK corner brackets
    ("\u300e", "\u300f"),  # CJK white corner brackets
    ("\u00ab", "\u00bb"),  # guillemets
    ("\u201e", "\u201c"),  # German quotes
)
_COLONS = (":", "\uff1a")  # ASCII and fullwidth


def parse(preset: TaskPreset, text: str | bytes | None) -> ParseResult:
    """Queries and auxiliary texts from one model output, with the problems found."""
    problems: list[Problem] = []
    body = _normalise(text, problems)
    body = _strip_echo(body, problems)
    aux, lines = _take_aux(preset, body.split("\n"), problems)
    has_items = any(line.strip() for line in lines)
    queries = _clean(preset, _split(lines, problems), problems) if has_items else []
    if not body.strip():
        problems.append(problem("empty_output", "the output holds no text"))
    for spec in preset.aux_texts:
        if spec.required and spec.name not in aux:
            problems.append(problem("missing_aux", f"auxiliary text {spec.name!r} is missing"))
    return ParseResult(queries=queries, aux_texts=aux, problems=problems)


def _normalise(text: object, problems: list[Problem]) -> str:
    if not isinstance(text, str):
        problems.append(problem("not_text", f"the output was {type(text).__name__}, not str"))
        if text is None:
            text = ""
        elif isinstance(text, bytes | bytearray):
            text = bytes(text[: MAX_OUTPUT_CHARS * 4]).decode("utf-8", errors="replace")
        else:
            text = str(text)
    if len(text) > MAX_OUTPUT_CHARS:
        problems.append(
            problem(
                "output_capped", f"output of {len(text)} chars; read the first {MAX_OUTPUT_CHARS}"
            )
        )
        text = text[:MAX_OUTPUT_CHARS]
    text = _LINE_BREAKS_RE.sub("\n", text)
    cleaned = _CONTROL_RE.sub("", text)
    if cleaned != text:
        problems.append(problem("control_chars", "removed control characters"))
    return cleaned


def _strip_echo(text: str, problems: list[Problem]) -> str:
    # The last header wins: anything before it is an echo of the prompt.
    start = _last(_RESPONSE_OPEN_RE, text) or _last(_CLOSING_TAG_LINE_RE, text)
    if start is not None:
        if text[: start.start()].strip():
            problems.append(problem("echoed_prompt", "dropped prompt text before the answer"))
        text = text[start.end() :]
    if end := _END_RE.search(text):
        if text[end.end() :].strip():
            problems.append(
                problem("trailing_text", f"dropped text after the end marker {end.group(0)!r}")
            )
        text = text[: end.start()]
    return text


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    match = None
    for match in pattern.finditer(text):  # noqa: B007 - keeping the last one is the point
        pass
    return match


def _take_aux(
    preset: TaskPreset, lines: list[str], problems: list[Problem]
) -> tuple[dict[str, str], list[str]]:
    if not preset.aux_texts:
        return {}, lines
    specs = {a.name: a for a in preset.aux_texts}
    label = "|".join(re.escape(name) for name in specs)
    aux_re = re.compile(rf"^[ \t]*(?:[-*•][ \t]*)?\**({label})\**[ \t]*[:\uff1a][ \t]*(.*)$", re.I)
    aux: dict[str, str] = {}
    rest: list[str] = []
    for line in lines:
        match = aux_re.match(line)
        if match is None:
            rest.append(line)
            continue
        name, value = match.group(1).lower(), _tidy(match.group(2))
        if not value:
            continue
        if name in aux:
            problems.append(problem("duplicate_aux", f"{name!r} given twice; kept the first"))
            continue
        limit = specs[name].max_chars
        if len(value) > limit:
            problems.append(problem("aux_truncated", f"{name!r} cut to {limit} chars", value))
            value = value[:limit].rstrip()
        aux[name] = value
    return aux, rest


def _split(lines: list[str], problems: list[Problem]) -> list[str]:
    """The raw items: the <SEP>-joined run of lines, or, without <SEP>, one item a line."""
    sep_rows = [i for i, line in enumerate(lines) if SEP_RE.search(line)]
    if not sep_rows:
        rows = [line for line in lines if line.strip()]
        preamble = 0
        while preamble < len(rows) - 1 and rows[preamble].rstrip().endswith(_COLONS):
            preamble += 1
        if preamble:
            problems.append(problem("preamble_dropped", "dropped text before the list"))
        if len(rows) - preamble > 1:
            problems.append(problem("no_separator", "no <SEP>: split the items on line breaks"))
        return _cap(rows[preamble:], problems)
    start = end = sep_rows[0]
    if SEP_RE.match(lines[start].lstrip()):  # a line opening with <SEP> continues the last one
        start = next((i for i in range(start - 1, -1, -1) if lines[i].strip()), start)
    for i in range(end + 1, len(lines)):
        if not lines[i].strip():
            continue
        if SEP_RE.search(lines[i]) or _ends_with_sep(lines[end]):
            end = i
        else:
            break
    if any(line.strip() for line in lines[:start]):
        problems.append(problem("preamble_dropped", "dropped text before the list"))
    if any(line.strip() for line in lines[end + 1 :]):
        problems.append(problem("trailing_text", "dropped text after the list"))
    items: list[str] = []
    for part in SEP_RE.split("\n".join(lines[start : end + 1])):
        rows = [row for row in part.split("\n") if row.strip()]
        if len(rows) > 1:
            problems.append(problem("no_separator", "split items on a line break missing <SEP>"))
        items += rows or [""]
        if len(items) > MAX_ITEMS:
            break
    return _cap(items, problems)


def _ends_with_sep(line: str) -> bool:
    return any(m.end() == len(line.rstrip()) for m in SEP_RE.finditer(line))


def _cap(items: list[str], problems: list[Problem]) -> list[str]:
    if len(items) > MAX_ITEMS:
        problems.append(problem("too_many_items", f"read only the first {MAX_ITEMS} items"))
    return items[:MAX_ITEMS]


def _clean(preset: TaskPreset, items: list[str], problems: list[Problem]) -> list[str]:
    items = [item.strip() for item in items]
    numbered = sum(1 for item in items if _NUMBER_RE.match(item))
    # Strip numbers only from a list that is numbered, so "1. FC Köln" alone survives a list.
    strip_numbers = numbered >= max(1, math.ceil(len(items) / 2))
    marked = 0
    queries: list[str] = []
    seen: set[str] = set()
    for raw in items:
        item = _NUMBER_RE.sub("", raw, count=1) if strip_numbers else raw
        item = _BULLET_RE.sub("", item, count=1)
        marked += item != raw
        unquoted = _unquote(item)
        if unquoted != item:
            problems.append(problem("quotes_removed", "removed surrounding quotes", raw))
        query = _tidy(unquoted)
        if not query:
            problems.append(problem("blank_item", "dropped an empty item"))
            continue
        fitted = _fit(preset, query, problems)
        if fitted is None:
            continue
        query = fitted
        key = "".join(query.casefold().split())
        if key in seen:
            problems.append(problem("duplicate", "dropped a repeated query", query))
            continue
        seen.add(key)
        queries.append(query)
    if marked:
        problems.append(problem("numbering_removed", f"removed list markers from {marked} items"))
    return queries[:MAX_QUERIES]


def _unquote(item: str) -> str:
    for _ in range(3):  # '"**x**"' nests; more is noise
        for left, right in _PAIRS:
            inner = item[len(left) : -len(right)]
            if (
                len(item) > len(left) + len(right)
                and item.startswith(left)
                and item.endswith(right)
                and left not in inner
                and right not in inner
            ):
                item = inner.strip()
                break
        else:
            return item
    return item


def _tidy(text: str) -> str:
    """Undo entities copied from the escaped prompt; collapse whitespace."""
    return " ".join(unescape(text).split())


def _fit(preset: TaskPreset, query: str, problems: list[Problem]) -> str | None:
    c = preset.constraints
    words = query.split()
    if len(query) <= c.max_chars and len(words) <= c.max_words:
        return query
    limits = f"{c.max_chars} chars / {c.max_words} words"
    if c.overlong == "drop":
        problems.append(problem("too_long", f"dropped a query over {limits}", query))
        return None
    cut = " ".join(words[: c.max_words])
    if len(cut) > c.max_chars:
        head = cut[: c.max_chars]
        # Cut at a word boundary when there is one; CJK text without spaces is cut hard.
        if cut[c.max_chars] != " " and " " in head:
            head = head[: head.rfind(" ")]
        cut = head.rstrip()
    problems.append(problem("truncated", f"cut a query to {limits}", query))
    return cut
