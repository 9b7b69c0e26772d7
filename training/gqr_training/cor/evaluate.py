"""Next-query retrieval evaluation of COR against a popularity baseline (TREC Session 2012).

Leave-one-session-out (or k-fold over sessions): for each held-out session, COR is built
from the other sessions by subtracting the held-out counts from the global counts; for each
(q, q_next) in the held-out session we retrieve top-K for q. A hit: q_next, or a query
within cosine ``--hit-similarity`` of it (judged by the packaged MiniLM), is in the top-K.

    python -m gqr_training.cor.evaluate \
        --trec ../shared/data/trec-session-2012/sessiontrack2012.xml.gz --encoder minilm

``--trec`` defaults to that file beside the repository (``../shared/data/`` from its root).
The last stdout line is a JSON report; a missing data file is a clean skip (exit 0).
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gqr_serving.cor.artifact import successors_from_columns
from gqr_serving.cor.encoders import QueryEncoder
from gqr_serving.cor.neighbours import ExactNeighbourIndex
from gqr_serving.cor.normalize import dedup_key
from gqr_serving.cor.retrieve import CORRetriever, RetrievalConfig
from gqr_training.cliconfig import ConfigParser, at_least, validate, within
from gqr_training.cor.extract import (
    ExtractConfig,
    ExtractStats,
    Session,
    count_transitions,
    prune,
    segments,
)

REPO = Path(__file__).resolve().parents[3]
DEFAULT_TREC = REPO.parent / "shared" / "data" / "trec-session-2012" / "sessiontrack2012.xml.gz"
"""The shared TREC Session 2012 data: ``../shared/data/`` from the repository's root."""
KS = (1, 3, 10)
EncoderForFold = Callable[[list[Session]], QueryEncoder]


@dataclass
class Scores:
    """Hit@K and MRR@max(K) accumulated over evaluation pairs."""

    hits: Counter[int]
    rr: float = 0.0
    n: int = 0
    answered: int = 0

    def add(self, rank: int | None, answered: bool) -> None:
        self.n += 1
        self.answered += answered
        if rank is not None:
            self.rr += 1.0 / rank
            for k in KS:
                self.hits[k] += rank <= k

    def report(self) -> dict[str, float]:
        n = max(self.n, 1)
        out = {f"hit@{k}": self.hits[k] / n for k in KS}
        out["mrr"] = self.rr / n
        out["coverage"] = self.answered / n
        return out


class CachedEncoder:
    """Remembers vectors per text: one fixed encoder reused across many folds."""

    def __init__(self, inner: QueryEncoder) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            self._cache.update(zip(missing, self.inner.encode(missing), strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


class Judge:
    """Decides whether a candidate matches the true next query (exact or cosine >= t)."""

    def __init__(self, encoder: QueryEncoder, queries: Sequence[str], threshold: float) -> None:
        uniq = sorted(set(queries))
        self.row = {q: i for i, q in enumerate(uniq)}
        self.vecs = encoder.encode(uniq)
        self.threshold = threshold

    def rank(self, candidates: Sequence[str], target: str) -> int | None:
        for i, cand in enumerate(candidates, start=1):
            if cand == target:
                return i
            a, b = self.row.get(cand), self.row.get(target)
            if a is not None and b is not None and self.vecs[a] @ self.vecs[b] >= self.threshold:
                return i
        return None


def successor_totals(counts: Counter[tuple[str, str]]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for (_, nxt), c in counts.items():
        totals[nxt] += c
    return totals


def popularity(totals: Counter[str], q: str, k: int) -> list[str]:
    """The most frequent entries of ``totals``, minus q and its near-duplicates."""
    key = dedup_key(q)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return [c for c, _ in ranked if c != q and dedup_key(c) != key][:k]


def evaluate(
    sessions: list[Session],
    folds: list[list[int]],
    encoder_for_fold: EncoderForFold,
    judge: Judge,
    *,
    extract_config: ExtractConfig | None = None,
    retrieval: RetrievalConfig | None = None,
) -> dict[str, dict[str, float]]:
    """Scores of COR, two popularity baselines, and COR padded with popular successors."""
    xcfg = extract_config or ExtractConfig()
    rcfg = retrieval or RetrievalConfig(k=max(KS))
    global_stats = ExtractStats()
    global_counts = count_transitions(sessions, xcfg, global_stats)
    names = ("cor", "popular-successors", "popular-queries", "cor+popular-successors")
    scores = {name: Scores(Counter()) for name in names}
    for held in folds:
        held_set = set(held)
        train = [s for i, s in enumerate(sessions) if i not in held_set]
        held_stats = ExtractStats()
        fold_counts = global_counts - count_transitions(
            [sessions[i] for i in held], xcfg, held_stats
        )
        fold_succ = successor_totals(fold_counts)
        fold_queries = global_stats.query_counts - held_stats.query_counts
        rows = prune(fold_counts, xcfg)
        succ, totals = successors_from_columns(*map(list, zip(*rows, strict=True)))
        encoder = encoder_for_fold(train)
        known = sorted(succ)
        index = ExactNeighbourIndex(known, encoder.encode(known))
        cor = CORRetriever(succ, totals, encoder=encoder, index=index, config=rcfg)
        k = max(KS)
        for i in held:
            for q, q_next in session_pairs(sessions[i], xcfg):
                items = [it.query for it in cor.retrieve(q, k).items]
                pop = popularity(fold_succ, q, k)
                padded = items + [p for p in pop if p not in items][: k - len(items)]
                runs = {
                    "cor": items,
                    "popular-successors": pop,
                    "popular-queries": popularity(fold_queries, q, k),
                    "cor+popular-successors": padded,
                }
                for name, cands in runs.items():
                    scores[name].add(judge.rank(cands, q_next), bool(cands))
    return {name: s.report() | {"pairs": float(s.n)} for name, s in scores.items()}


def session_pairs(session: Session, config: ExtractConfig) -> list[tuple[str, str]]:
    """The (q, q_next) pairs extraction would count for one session."""
    pairs = []
    for seg in segments(session[1], config.max_gap_s):
        for a, b in itertools.pairwise(seg):
            if a != b:
                pairs.append((a, b))
    return pairs


def loso_folds(n: int) -> list[list[int]]:
    return [[i] for i in range(n)]


def kfold(n: int, k: int, seed: int = 0) -> list[list[int]]:
    order = np.random.default_rng(seed).permutation(n)
    return [sorted(int(i) for i in order[j::k]) for j in range(k)]


@dataclass(kw_only=True)
class COREvaluateConfig:
    """What the COR evaluation is told: the data, the encoder, the protocol, the judge."""

    trec: Path = field(default=DEFAULT_TREC, metadata={"help": "TREC Session XML(.gz)."})
    encoder: str = field(
        default="minilm", metadata={"help": "minilm | hashing[:DIM] | model folder."}
    )
    folds: int = field(default=0, metadata={"help": "k-fold over sessions; 0 = LOSO."})
    hit_similarity: float = field(
        default=0.8,
        metadata={"help": "Judge cosine (0.8).", "rule": within(0, 1, "a cosine")},
    )
    neighbours: int = field(
        default=10, metadata={"help": "N_s (10).", "rule": at_least(1, "a whole number")}
    )
    min_cooccurring: int = field(
        default=5, metadata={"help": "n (5).", "rule": at_least(1, "a whole number")}
    )
    out: Path | None = field(default=None, metadata={"help": "Also write the JSON report here."})

    def __post_init__(self) -> None:
        validate(self)


def make_parser() -> ConfigParser[COREvaluateConfig]:
    return ConfigParser(
        COREvaluateConfig, description="Evaluate COR next-query retrieval (TREC Session)."
    )


def main(argv: list[str] | None = None) -> int:
    from gqr_serving.cor.encoders import load_encoder
    from gqr_training.cor.sources import trec_sessions_unless_missing

    args = make_parser().parse_config(argv)
    sessions = trec_sessions_unless_missing(args.trec, "COR evaluation")
    if sessions is None:
        return 0
    judge_encoder = load_encoder("minilm")
    base = judge_encoder if args.encoder == "minilm" else load_encoder(args.encoder)
    encoder = CachedEncoder(base)
    xcfg = ExtractConfig()
    every = [q for s in sessions for seg in segments(s[1], xcfg.max_gap_s) for q in seg]
    judge = Judge(judge_encoder, every, args.hit_similarity)
    folds = loso_folds(len(sessions)) if args.folds <= 0 else kfold(len(sessions), args.folds)
    rcfg = RetrievalConfig(
        k=max(KS), neighbours=args.neighbours, min_cooccurring=args.min_cooccurring
    )
    report: dict[str, Any] = {
        "data": str(args.trec),
        "sessions": len(sessions),
        "protocol": "loso" if args.folds <= 0 else f"{args.folds}-fold",
        "encoder": encoder.name,
        "hit_similarity": args.hit_similarity,
        "results": evaluate(sessions, folds, lambda _: encoder, judge, retrieval=rcfg),
    }
    line = json.dumps(report, sort_keys=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
