"""The errors COR raises where a caller must decide what to do (degrade, or fix the input)."""

from __future__ import annotations


class CORUnavailable(RuntimeError):
    """The vector index (Milvus) cannot be reached or answered with an error.

    The gateway catches this to degrade: serve direct successors only, or no COR section.
    """


class QueryTooLong(ValueError):
    """The query is longer than ``RetrievalConfig.max_query_chars``; nothing was retrieved."""


class IndexMismatch(RuntimeError):
    """The index holds vectors of another dimension than the encoder produces."""
