"""Build the CTR predictor's input sequence for one (user query, shown list, position k).

Layout (Figure 2 of the paper), with ``k`` 1-based and D(.) the domain id of each token:

    base: [CLS] q_user [SEP] q_k [SEP]                 D = 0 ... 0 | 1 ... 1
    pid:  [CLS] q_user [SEP] q_k [SEP]                 D = 0 ... 0 | k ... k
    ctx:  [CLS] q_user q_1 .. q_{k-1} [SEP] q_k [SEP]  D = 0 | 1 .. | k-1 .. | k ... k

Special tokens take the domain of the text they close ([CLS] and the first [SEP] after the
user query take 0; in ``ctx`` the first [SEP] takes the domain of q_{k-1}). Segment (token
type) ids are 0 up to and including the first [SEP], 1 after it.

Match ids (an exact-match feature, as in reading-comprehension models): for each token, +1 when
the same token occurs in the *other side* of the user query / shown query pair (a user token
found in q_k or a context query; a q_k or context token found in the user query), +2 (``ctx``
only) when it occurs in the other side of the q_k / context pair. Special tokens are 0. A
from-scratch encoder learns "same words as the user query" from these far more easily than by
matching token embeddings through attention: without them the measured predictor ignored the
user query almost entirely (relatedness and near-copies are what it failed to see).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

Variant = Literal["base", "pid", "ctx"]
VARIANTS: tuple[str, ...] = get_args(Variant)


@dataclass(frozen=True)
class Encoded:
    """One model input before padding."""

    input_ids: list[int]
    token_type_ids: list[int]
    domain_ids: list[int]
    match_ids: list[int]


@dataclass(frozen=True)
class Layout:
    """What the encoder needs to know about the tokenizer and the trained limits."""

    cls_id: int
    sep_id: int
    pad_id: int
    max_length: int
    max_query_tokens: int


def check_variant(variant: str) -> Variant:
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}: expected one of {', '.join(VARIANTS)}")
    return variant  # type: ignore[return-value]


def encode(
    layout: Layout,
    variant: Variant,
    user: list[int],
    shown: Sequence[list[int]],
    k: int,
) -> Encoded:
    """Input for the query at 0-based position ``k`` of ``shown`` (already tokenized, no
    special tokens). Texts are cut to ``max_query_tokens``; if the whole still exceeds
    ``max_length``, the context queries farthest from q_k are cut first."""
    cap = layout.max_query_tokens
    user = user[:cap]
    cand = shown[k][:cap]
    cand_domain = 1 if variant == "base" else k + 1
    context: list[tuple[list[int], int]] = []
    if variant == "ctx":
        context = [(list(q[:cap]), j + 1) for j, q in enumerate(shown[:k])]
    fixed = 3 + len(user) + len(cand)  # [CLS], [SEP], [SEP]
    budget = layout.max_length - fixed
    if budget < 0:  # only possible with a tiny max_length: cut the user query
        user = user[: max(0, len(user) + budget)]
        budget = 0
    # Drop from the oldest context query first: the nearest ones matter most.
    total = sum(len(t) for t, _ in context)
    i = 0
    while total > budget and i < len(context):
        tokens, dom = context[i]
        cut = min(len(tokens), total - budget)
        context[i] = (tokens[cut:], dom)
        total -= cut
        i += 1
    user_set, cand_set = set(user), set(cand)
    ctx_set = {t for tokens, _ in context for t in tokens}
    shown_set = cand_set | ctx_set
    ids = [layout.cls_id, *user]
    doms = [0] * (1 + len(user))
    match = [0, *(int(t in shown_set) for t in user)]
    for tokens, dom in context:
        ids.extend(tokens)
        doms.extend([dom] * len(tokens))
        match.extend(int(t in user_set) + 2 * int(t in cand_set) for t in tokens)
    ids.append(layout.sep_id)
    doms.append(doms[-1])
    match.append(0)
    first = len(ids)
    ids.extend([*cand, layout.sep_id])
    doms.extend([cand_domain] * (len(cand) + 1))
    match.extend([*(int(t in user_set) + 2 * int(t in ctx_set) for t in cand), 0])
    types = [0] * first + [1] * (len(ids) - first)
    n = layout.max_length
    return Encoded(ids[:n], types[:n], doms[:n], match[:n])


def pad(batch: Sequence[Encoded], pad_id: int) -> dict[str, list[list[int]]]:
    """Right-pad a batch to its longest input; returns lists ready for ``torch.tensor``."""
    width = max(len(e.input_ids) for e in batch)
    out: dict[str, list[list[int]]] = {
        "input_ids": [],
        "attention_mask": [],
        "token_type_ids": [],
        "domain_ids": [],
        "match_ids": [],
    }
    for e in batch:
        n = width - len(e.input_ids)
        out["input_ids"].append(e.input_ids + [pad_id] * n)
        out["attention_mask"].append([1] * len(e.input_ids) + [0] * n)
        out["token_type_ids"].append(e.token_type_ids + [0] * n)
        out["domain_ids"].append(e.domain_ids + [0] * n)
        out["match_ids"].append(e.match_ids + [0] * n)
    return out
