"""Preference pairs for CTR alignment (paper §3.2.2): chosen lists from CTR-guided beam search,
rejected lists from N_r random full responses with the lowest list reward, the overlap filter
on both, and eq. 6: among the surviving (chosen, rejected) candidates, keep the pair whose
lengths are closest (guards against the reward model's length bias). Eq. 6 only picks the
closest of what is there: when every chosen list is shorter than every rejected one, the
closest pair still teaches "shorter wins", so a pair whose lengths differ by more than
``max_length_gap`` (relative) is not made at all.

With an output filter (``PairConfig.safety``, :mod:`gqr_serving.safety`), a list holding a
query the gateway would refuse to serve (a URL, an e-mail address, a phone number, a
blocklisted term, ...) is never the chosen response; it may still be the rejected one, which
teaches the policy to avoid it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gqr_serving.prompt import SEP, TaskPreset
from gqr_serving.safety import OutputFilter
from gqr_training.align.beam import BeamConfig, Scored, beam_search
from gqr_training.align.data import Task, completion_text, read_response
from gqr_training.align.generate import Engine
from gqr_training.align.overlap import OverlapFilter
from gqr_training.align.scoring import ListScorer


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    chosen_reward: float
    rejected_reward: float

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PairConfig:
    """Pair building knobs (B, C of the beam; N_r^budget; filter; margin)."""

    beam: BeamConfig = field(default_factory=BeamConfig)
    """Algorithm 1's knobs."""
    rejected_budget: int = 8
    """N_r^budget: random full responses sampled per prompt."""
    rejected_keep: int = 3
    """The lowest-reward samples that may be the rejected response."""
    temperature: float = 1.0
    """Sampling temperature of the random responses."""
    min_margin: float = 0.02
    """A pair needs chosen reward - rejected reward of at least this."""
    use_beam: bool = True
    """False: the -BS ablation, chosen = best of the random samples instead."""
    max_new_tokens: int = 48
    """Longest sampled response, in tokens."""
    max_length_gap: float | None = 0.1
    """Longest allowed length difference inside a pair, relative to the longer response
    (None: no limit, eq. 6 alone)."""
    pairs_per_prompt: int = 1
    """Pairs kept per prompt: eq. 6 is applied again to the candidates not yet used (the
    paper keeps 1; more pairs reuse the same generation for more DPO signal)."""
    safety: OutputFilter | None = None
    """The output filter: a list it refuses is never chosen (None: no filter)."""


@dataclass
class PairStats:
    prompts: int = 0
    pairs: int = 0
    filtered_chosen: int = 0
    filtered_rejected: int = 0
    unsafe_chosen: int = 0
    """Chosen candidates the output filter refused: next queries beam search did not extend
    and full lists not chosen (they may still be rejected)."""
    no_pair: int = 0
    length_gap_refused: int = 0
    """Prompts where pairs with enough reward margin existed but none within the length gap."""
    mean_chosen_reward: float = 0.0
    mean_rejected_reward: float = 0.0
    mean_chosen_len: float = 0.0
    mean_rejected_len: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def length(text: str) -> int:
    """Response length for eq. 6: characters of the completion."""
    return len(text)


def within_gap(a: str, b: str, max_gap: float | None) -> bool:
    """True when the lengths of ``a`` and ``b`` differ by at most ``max_gap`` of the longer."""
    if max_gap is None:
        return True
    la, lb = length(a), length(b)
    return abs(la - lb) <= max_gap * max(la, lb, 1)


def select_pair(
    chosen: Sequence[tuple[str, float]],
    rejected: Sequence[tuple[str, float]],
    min_margin: float,
    max_gap: float | None = None,
) -> tuple[tuple[str, float], tuple[str, float]] | None:
    """Eq. 6: the (chosen, rejected) candidates with the closest lengths among those whose
    reward gap is at least ``min_margin`` (and lengths within ``max_gap``, relative); ties go
    to the larger gap."""
    best: tuple[int, float, int, int] | None = None
    for i, (c, rc) in enumerate(chosen):
        for j, (r, rr) in enumerate(rejected):
            gap = rc - rr
            if gap < min_margin or not within_gap(c, r, max_gap):
                continue
            key = (abs(length(c) - length(r)), -gap, i, j)
            if best is None or key < best:
                best = key
    if best is None:
        return None
    return chosen[best[2]], rejected[best[3]]


def select_pairs(
    chosen: Sequence[tuple[str, float]],
    rejected: Sequence[tuple[str, float]],
    min_margin: float,
    k: int,
    max_gap: float | None = None,
) -> list[tuple[tuple[str, float], tuple[str, float]]]:
    """Up to ``k`` disjoint pairs, each the eq. 6 choice among the candidates still unused."""
    left_c, left_r = list(chosen), list(rejected)
    out: list[tuple[tuple[str, float], tuple[str, float]]] = []
    while len(out) < k:
        picked = select_pair(left_c, left_r, min_margin, max_gap)
        if picked is None:
            break
        out.append(picked)
        left_c.remove(picked[0])
        left_r.remove(picked[1])
    return out


def sample_raw(
    engine: Engine,
    preset: TaskPreset,
    tasks: Sequence[Task],
    n: int,
    temperature: float,
    max_new_tokens: int = 48,
) -> list[list[tuple[str, list[str]]]]:
    """``n`` random full responses per task: (the text the model wrote, the queries serving
    would show from it)."""
    raw = engine.complete([t.prompt for t in tasks], n, temperature, max_new_tokens, False)
    return [
        [(x.strip(), read_response(preset, t, x)) for x in xs]
        for t, xs in zip(tasks, raw, strict=True)
    ]


def written_items(text: str) -> int:
    """How many queries the model wrote (non-blank parts between separators), duplicates and
    rejects included: what makes a response "complete" as text."""
    return sum(1 for part in text.split(SEP) if part.strip())


def safe_lists(lists: Sequence[Scored], safety: OutputFilter | None) -> list[Scored]:
    """The lists none of whose queries ``safety`` refuses (all of them without a filter)."""
    if safety is None:
        return list(lists)
    return [s for s in lists if safety.first_reason(s.queries) is None]


def _counted(safety: OutputFilter | None, stats: PairStats) -> Callable[[str], bool] | None:
    """Beam search's ``keep``: the filter's verdict on one query, refusals counted."""
    if safety is None:
        return None

    def keep(query: str) -> bool:
        if safety.reason(query) is None:
            return True
        stats.unsafe_chosen += 1
        return False

    return keep


def build_pairs(
    engine: Engine,
    preset: TaskPreset,
    tasks: Sequence[Task],
    scorer: ListScorer,
    config: PairConfig | None = None,
    overlap: OverlapFilter | None = None,
) -> tuple[list[Pair], PairStats]:
    """One (chosen, rejected) pair per task where a pair with enough margin exists."""
    cfg = config or PairConfig()
    flt = overlap or OverlapFilter("none")
    samples = sample_raw(
        engine, preset, tasks, cfg.rejected_budget, cfg.temperature, cfg.max_new_tokens
    )
    flat = [(i, text, s) for i, ss in enumerate(samples) for text, s in ss if s]
    rewards = scorer([(tasks[i].query, s, tasks[i].component) for i, _, s in flat])
    sampled: list[list[Scored]] = [[] for _ in tasks]
    written: list[dict[tuple[str, ...], str]] = [{} for _ in tasks]
    for (i, text, s), r in zip(flat, rewards, strict=True):
        sampled[i].append(Scored(tuple(s), r))
        written[i].setdefault(tuple(s), text)
    stats = PairStats(prompts=len(tasks))
    if cfg.use_beam:
        beams = beam_search(engine, preset, tasks, scorer, cfg.beam, _counted(cfg.safety, stats))
    else:
        beams = [sorted(ss, key=lambda s: -s.reward)[: cfg.beam.beam_size] for ss in sampled]
    pairs: list[Pair] = []
    for i, task in enumerate(tasks):
        full = [b for b in beams[i] if len(b.queries) == task.n_queries]
        safe = safe_lists(full, cfg.safety)
        stats.unsafe_chosen += len(full) - len(safe)
        chosen = [b for b in safe if flt.keep(task.query, b.queries)]
        stats.filtered_chosen += len(safe) - len(chosen)
        # The rejected response is what the policy wrote (a repeated or invalid query
        # included), scored as serving would show it: the policy must learn that writing the
        # same query twice loses a slot. Complete texts first: a short rejected text would
        # teach "write fewer queries" and unbalance lengths (eq. 6 picks among what is here).
        texts = written[i]
        pool = [
            s for s in sampled[i] if written_items(texts[s.queries]) >= task.n_queries
        ] or sampled[i]
        low = sorted(pool, key=lambda s: s.reward)[: cfg.rejected_keep]
        rejected = [s for s in low if flt.keep(task.query, s.queries)]
        stats.filtered_rejected += len(low) - len(rejected)
        c_cands = [(completion_text(c.queries), c.reward) for c in chosen]
        r_cands = [(texts[r.queries], r.reward) for r in rejected]
        picked = select_pairs(
            c_cands, r_cands, cfg.min_margin, cfg.pairs_per_prompt, cfg.max_length_gap
        )
        if not picked:
            stats.no_pair += 1
            if select_pair(c_cands, r_cands, cfg.min_margin) is not None:
                stats.length_gap_refused += 1
        for (c_text, c_r), (r_text, r_r) in picked:
            pairs.append(Pair(task.prompt, c_text, r_text, c_r, r_r))
    if pairs:
        n = len(pairs)
        stats.pairs = n
        stats.mean_chosen_reward = sum(p.chosen_reward for p in pairs) / n
        stats.mean_rejected_reward = sum(p.rejected_reward for p in pairs) / n
        stats.mean_chosen_len = sum(length(p.chosen) for p in pairs) / n
        stats.mean_rejected_len = sum(length(p.rejected) for p in pairs) / n
    return pairs, stats
