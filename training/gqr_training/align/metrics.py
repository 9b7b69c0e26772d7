"""What a policy's responses look like on a fixed test set: AEC (average estimated CTR, the
CTR predictor's list reward), the true CTR when a caller can measure it, length, diversity
(distinct-n), relatedness to the user query and exclusivity (no near-duplicates).

Lists are measured as the gateway serves them: the model's queries that pass the post-filter,
topped up from the prompt's co-occurring queries when fewer than N survive (a repeated or
invalid query costs a slot only when COR has nothing to put there). ``llm_queries`` and
``llm_full_lists`` say what the model wrote by itself, so a policy that leans on the top-up
shows it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gqr_contracts.routing import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from gqr_serving.prompt import TaskPreset
from gqr_training.align.data import Task, clean_list, read_response
from gqr_training.align.generate import Engine
from gqr_training.align.overlap import jaccard
from gqr_training.align.scoring import ListScorer

# The gateway's default decoding (the CRD's spec.llm.decoding defaults): evaluation samples the
# test responses the way they are served.
SERVING_TEMPERATURE = DEFAULT_TEMPERATURE
SERVING_TOP_P = DEFAULT_TOP_P

# The caller's measure of the true CTR of one list per test task (the simulated world in the
# demo); alignment code never computes it.
TrueCTR = Callable[[Sequence[Sequence[str]]], float]


def distinct_n(lists: Sequence[Sequence[str]], n: int) -> float:
    grams: list[tuple[str, ...]] = []
    for qs in lists:
        for q in qs:
            w = q.split()
            grams.extend(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    return len(set(grams)) / max(1, len(grams))


def relatedness(tasks: Sequence[Task], lists: Sequence[Sequence[str]]) -> float:
    """Share of queries sharing at least one word with the user query."""
    hits = total = 0
    for t, qs in zip(tasks, lists, strict=True):
        words = set(t.query.lower().split())
        for q in qs:
            total += 1
            hits += bool(words & set(q.lower().split()))
    return hits / max(1, total)


def exclusivity(tasks: Sequence[Task], lists: Sequence[Sequence[str]], thr: float = 0.7) -> float:
    """Share of lists where no two texts (user query included) have word Jaccard >= ``thr``."""
    ok = 0
    for t, qs in zip(tasks, lists, strict=True):
        texts = [t.query, *qs]
        ok += all(
            jaccard(texts[i], texts[j]) < thr
            for i in range(len(texts))
            for j in range(i + 1, len(texts))
        )
    return ok / max(1, len(lists))


def describe(
    tasks: Sequence[Task],
    lists: Sequence[Sequence[str]],
    scorer: ListScorer,
    true_ctr: TrueCTR | None = None,
) -> dict[str, float]:
    """The metrics of given lists (one per task)."""
    rewards = scorer([(t.query, list(q), t.component) for t, q in zip(tasks, lists, strict=True)])
    n = max(1, len(lists))
    queries = [q for qs in lists for q in qs]
    out = {
        "aec": sum(rewards) / n,
        "mean_queries": len(queries) / n,
        "mean_query_words": sum(len(q.split()) for q in queries) / max(1, len(queries)),
        "mean_response_chars": sum(len(" <SEP> ".join(qs)) for qs in lists) / n,
        "distinct_1": distinct_n(lists, 1),
        "distinct_2": distinct_n(lists, 2),
        "relatedness": relatedness(tasks, lists),
        "exclusivity": exclusivity(tasks, lists),
        "full_lists": sum(len(qs) == t.n_queries for t, qs in zip(tasks, lists, strict=True)) / n,
    }
    if true_ctr is not None:
        out["true_ctr"] = float(true_ctr(lists))
    return out


def served(preset: TaskPreset, task: Task, queries: Sequence[str]) -> list[str]:
    """What the gateway shows for the model's (post-filtered) queries: topped up from the
    prompt's co-occurring queries when fewer than N survived (``gateway.pipeline``)."""
    if len(queries) >= task.n_queries:
        return list(queries)
    return clean_list(preset, task, [*queries, *task.request.side_info.cooccurring])


def model_lists(
    engine: Engine,
    preset: TaskPreset,
    tasks: Sequence[Task],
    temperature: float = SERVING_TEMPERATURE,
    max_new_tokens: int = 48,
) -> list[list[str]]:
    """One response per task from the model alone (sampled at the serving temperature; 0 =
    greedy; the serving top-p is the engine's: ``HFEngine(top_p=SERVING_TOP_P)``),
    post-filtered, not topped up."""
    raw = engine.complete([t.prompt for t in tasks], 1, temperature, max_new_tokens, False)
    return [read_response(preset, t, xs[0]) for t, xs in zip(tasks, raw, strict=True)]


def policy_lists(
    engine: Engine,
    preset: TaskPreset,
    tasks: Sequence[Task],
    temperature: float = SERVING_TEMPERATURE,
    max_new_tokens: int = 48,
) -> list[list[str]]:
    """One served response per task: the model's, topped up from COR like the gateway does."""
    own = model_lists(engine, preset, tasks, temperature, max_new_tokens)
    return [served(preset, t, q) for t, q in zip(tasks, own, strict=True)]


def evaluate(
    engine: Engine,
    preset: TaskPreset,
    tasks: Sequence[Task],
    scorer: ListScorer,
    true_ctr: TrueCTR | None = None,
    temperature: float = SERVING_TEMPERATURE,
) -> dict[str, float]:
    """AEC (and the rest) of the policy behind ``engine`` on the test tasks, as served; plus
    what the model wrote by itself (``llm_queries``, ``llm_full_lists``)."""
    own = model_lists(engine, preset, tasks, temperature)
    lists = [served(preset, t, q) for t, q in zip(tasks, own, strict=True)]
    out = describe(tasks, lists, scorer, true_ctr)
    n = max(1, len(own))
    out["llm_queries"] = sum(len(q) for q in own) / n
    out["llm_full_lists"] = sum(len(q) == t.n_queries for t, q in zip(tasks, own, strict=True)) / n
    return out
