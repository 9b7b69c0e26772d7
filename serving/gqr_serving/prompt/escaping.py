"""Escape user-provided text so that it can never open, close or fake a prompt section.

Why this scheme: the prompt's structure is carried only by tag lines (``<query>`` ...
``</query>``), the ``<SEP>`` separator and the ``<response>`` header, and every one of them
needs ``<`` and ``>``. Escaping ``&``, ``<`` and ``>`` the XML way (``&amp;`` ``&lt;``
``&gt;``) makes any user text - a query, a history item, an AI answer, a retrieved document -
incapable of producing those markers, however it is crafted, while staying readable to the LLM
(it has seen HTML entities in pre-training). Line breaks (``&#10;``) and other control
characters (``&#N;``) are escaped too wherever one line must hold one item (list sections),
so an item can never pose as two. The mapping is exactly reversible with :func:`unescape`.

Fake instructions ("ignore previous instructions...") are not removed - no filter can
recognise them all - but they stay inside their own data section, and the instructions say
that section text is data, never instructions.
"""

from __future__ import annotations

import re

_BASIC = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BASIC_RE = re.compile(r"[&<>]")
# C0/C1 controls (tab and newline included) and the Unicode line/paragraph separators: any of
# them could split or hide an item on its line.
_LINE_BREAKING_RE = re.compile(r"[&<>\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")
_ENTITY_RE = re.compile(r"&(amp|lt|gt|#[0-9]{1,7});")
_NAMED = {"amp": "&", "lt": "<", "gt": ">"}


def _char_ref(match: re.Match[str]) -> str:
    char = match.group(0)
    return _BASIC.get(char) or f"&#{ord(char)};"


def escape(text: str, *, one_line: bool = False) -> str:
    """Escape ``&``, ``<``, ``>``; with ``one_line`` also line breaks and control characters."""
    if one_line:
        return _LINE_BREAKING_RE.sub(_char_ref, text)
    return _BASIC_RE.sub(_char_ref, text)


def _unref(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _NAMED:
        return _NAMED[name]
    code = int(name[1:])
    # An out-of-range or surrogate code point cannot come from escape(): leave it as it is.
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return match.group(0)
    return chr(code)


def unescape(text: str) -> str:
    """Invert :func:`escape` (in either mode)."""
    return _ENTITY_RE.sub(_unref, text)
