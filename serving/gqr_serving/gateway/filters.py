"""Post-filter: the task's constraints (``enforce``) plus what no preset should let through.

``enforce`` drops duplicates, near copies of the user query, over-long items and items that
break the task (prefix, history). On top, this drops items with control or private-use
characters, tag-like markup, and text copied from the prompt's instructions — a model talked
into revealing its instructions shows nothing of them to users. Last, the output filter
(:mod:`gqr_serving.safety`: URLs, e-mail addresses, phone numbers, card numbers, IBANs and the
user blocklist) drops what it refuses, its reason code (``url``, ``email``, ...) among the
problem codes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from gqr_serving.prompt import ParseResult, PromptRequest, TaskPreset, enforce, split_sections
from gqr_serving.safety import OutputFilter

MAX_QUERY_CHARS = 200
_TAG = re.compile(r"</?\s*[A-Za-z_][\w-]*\s*>|<SEP>|&lt;|&gt;", re.IGNORECASE)
_BAD_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn"}
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SECRET_SECTIONS = ("instructions", "response_format")


def _clean_text(text: str) -> bool:
    # U+FFFD marks bytes a tokenizer could not decode: broken output, never a query.
    if text.isascii():  # the common case; of ASCII only the controls (Cc) are bad
        return _ASCII_CONTROL.search(text) is None
    return "\ufffd" not in text and not any(
        unicodedata.category(ch) in _BAD_CATEGORIES for ch in text
    )


def _leaks(text: str, instructions: str) -> bool:
    """True when ``text`` holds a run of 6+ words (or 30+ chars) of the instructions."""
    t = " ".join(text.lower().split())
    if len(t) >= 30 and t in instructions:
        return True
    words = t.split()
    return any(" ".join(words[i : i + 6]) in instructions for i in range(len(words) - 5))


def secret_text(prompt: str) -> str:
    """The prompt's own text (instructions and response format), normalised for ``_leaks``."""
    return secret_of_sections(split_sections(prompt))


def secret_of_sections(sections: Iterable[tuple[str, str]]) -> str:
    """:func:`secret_text` from the prompt's sections (``RenderedPrompt.sections``), which
    spares splitting the rendered text again."""
    parts = [body for name, body in sections if name in _SECRET_SECTIONS]
    return " ".join(" ".join(parts).lower().split())


def post_filter(
    preset: TaskPreset,
    request: PromptRequest,
    result: ParseResult,
    secret: str = "",
    safety: OutputFilter | None = None,
) -> tuple[list[str], dict[str, str], list[str]]:
    """Kept queries, kept aux texts, and the problem codes (for metrics).

    ``secret`` is :func:`secret_text` of the prompt (default: the preset's instructions);
    ``safety`` the output filter (None: none). A query it refuses adds its reason code; an aux
    text it refuses adds its reason code and ``aux_dropped``.
    """
    checked = enforce(preset, request, result)
    codes = list(checked.codes)
    instructions = secret or " ".join(preset.instructions.lower().split())
    queries = []
    for q in checked.queries:
        if len(q) > MAX_QUERY_CHARS or not _clean_text(q):
            codes.append("bad_charset")
        elif _TAG.search(q):
            codes.append("markup")
        elif _leaks(q, instructions):
            codes.append("instruction_leak")
        elif safety is not None and (reason := safety.reason(q)) is not None:
            codes.append(reason)
        else:
            queries.append(q)
    aux = {}
    for name, text in checked.aux_texts.items():
        if not _clean_text(text) or _TAG.search(text) or _leaks(text, instructions):
            codes.append("aux_dropped")
        elif safety is not None and (reason := safety.reason(text)) is not None:
            codes += [reason, "aux_dropped"]
        else:
            aux[name] = text
    return queries, aux, codes
