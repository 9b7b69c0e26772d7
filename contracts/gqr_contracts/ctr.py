"""The CTR predictor's V1 REST wire format (KServe ``POST /v1/models/<name>:predict``), as the
predictor serves it and the gateway calls it.

    {"instances": [{"query": "...", "queries": ["...", ...], "component": "multiChoice",
                    "user_key": "<hashed key, optional>"}]}
    -> {"predictions": [{"p": [p_1, ...], "reward": r}]}

``reward`` is :func:`gqr_contracts.reward.list_reward` of ``p`` for the instance's component.
What a list may hold beyond this shape (non-empty queries, the artifact's number of positions)
the predictor checks against its model.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from gqr_contracts.reward import DEFAULT_COMPONENT, Component

MAX_INSTANCES = 1024
"""Lists in one request."""
MAX_USER_KEY_CHARS = 256


class CtrInstance(BaseModel):
    """One list to score."""

    model_config = ConfigDict(frozen=True)
    query: str = Field(description="The user's query the list was shown for.")
    queries: list[str] = Field(description="The recommended queries, in display order.")
    component: Component = DEFAULT_COMPONENT
    user_key: str | None = Field(
        None,
        max_length=MAX_USER_KEY_CHARS,
        description="The hashed user key, as logged; a known one applies that user's "
        "propensity, an unknown or absent one changes nothing.",
    )


class CtrRequest(BaseModel):
    """A V1 predict request."""

    instances: list[CtrInstance] = Field(min_length=1, max_length=MAX_INSTANCES)

    @classmethod
    def lists(cls, query: str, lists: Sequence[Sequence[str]], component: Component) -> CtrRequest:
        """Several candidate lists for one user query."""
        return cls(
            instances=[
                CtrInstance(query=query, queries=list(q), component=component) for q in lists
            ]
        )


class CtrPrediction(BaseModel):
    """The score of one list."""

    p: list[float] = Field(description="Click probability of each position.")
    reward: float = Field(description="The list reward of p (eq. 3 or 4).")


class CtrResponse(BaseModel):
    """A V1 predict answer: one prediction per instance, in order."""

    predictions: list[CtrPrediction]
