"""Query normalisation: the one canonical form under which COR counts and looks up queries."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+")


def normalize_query(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed and stripped.

    NFKC first so full-width letters and ligatures fold to their plain forms; ``casefold``
    rather than ``lower`` so German sharp s and friends compare equal.
    """
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def dedup_key(query: str) -> str:
    """The near-duplicate key of a query: the sorted set of its normalised word tokens.

    Two queries with the same key differ only in punctuation, repeated words or word order
    ("403(b) tax code" ~ "tax code 403 b"); COR never recommends a near-duplicate of the user
    query, nor two near-duplicates of each other.
    """
    return " ".join(sorted(set(_TOKEN.findall(normalize_query(query)))))
