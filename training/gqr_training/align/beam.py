"""CTR-guided beam search over queries (the paper's Algorithm 1), batched over prompts.

For k = 1..N: every beam (a list of k-1 chosen queries) is extended by C candidate next queries
sampled from the policy; every extended list is scored by the list reward of the CTR predictor
(eq. 3 / eq. 4); the B best lists of each prompt survive. Returns the B final lists per prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gqr_serving.prompt import TaskPreset
from gqr_training.align.data import Task, prefix_text, valid_next
from gqr_training.align.generate import Engine, next_query_candidates
from gqr_training.align.scoring import ListJob, ListScorer


@dataclass(frozen=True)
class Scored:
    """A list of queries and its estimated list reward."""

    queries: tuple[str, ...]
    reward: float


@dataclass
class BeamConfig:
    """Algorithm 1's knobs."""

    beam_size: int = 4
    """B: lists kept per prompt after every step."""
    candidates: int = 4
    """C: next-query samples per beam per step."""
    temperatures: tuple[float, ...] = (0.8, 1.0, 1.3)
    """The C samples are spread over these temperatures (diversity)."""
    max_new_tokens: int = 16
    """Longest next query, in tokens."""


def beam_search(
    engine: Engine,
    preset: TaskPreset,
    tasks: Sequence[Task],
    scorer: ListScorer,
    config: BeamConfig | None = None,
    keep: Callable[[str], bool] | None = None,
) -> list[list[Scored]]:
    """The B best lists found for each task, best first (fewer when candidates ran out).

    ``keep`` (the output filter): a candidate next query it refuses is not extended, so a
    reward model fond of, say, URLs cannot fill the beam with lists that may never be chosen."""
    cfg = config or BeamConfig()
    beams: list[list[Scored]] = [[Scored((), 0.0)] for _ in tasks]
    for k in range(max(t.n_queries for t in tasks)):
        jobs = [(i, b) for i, t in enumerate(tasks) if k < t.n_queries for b in beams[i]]
        if not jobs:
            break
        texts = [tasks[i].prompt + prefix_text(b.queries) for i, b in jobs]
        conts = next_query_candidates(
            engine, texts, cfg.candidates, cfg.temperatures, cfg.max_new_tokens
        )
        grown: dict[int, dict[tuple[str, ...], None]] = {i: {} for i, _ in jobs}
        for (i, b), cands in zip(jobs, conts, strict=True):
            for q in cands:
                if valid_next(preset, tasks[i], b.queries, q) and (keep is None or keep(q)):
                    grown[i][(*b.queries, q)] = None
        flat: list[tuple[int, tuple[str, ...]]] = [(i, ql) for i, g in grown.items() for ql in g]
        jobs_: list[ListJob] = [(tasks[i].query, list(ql), tasks[i].component) for i, ql in flat]
        rewards = scorer(jobs_)
        by_task: dict[int, list[Scored]] = {}
        for (i, ql), r in zip(flat, rewards, strict=True):
            by_task.setdefault(i, []).append(Scored(ql, r))
        for i, found in by_task.items():
            found.sort(key=lambda s: -s.reward)
            beams[i] = found[: cfg.beam_size]
    return [[b for b in bs if b.queries] for bs in beams]
