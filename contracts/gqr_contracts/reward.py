"""The list reward (the paper's eq. 3 and 4): a list's CTR from its per-position click
probabilities. The CTR predictor's answer, the alignment loop's reward and the simulated
world's truth all compute it here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Component = Literal["multiChoice", "singleChoice"]
"""How users click a list: multiChoice (any number of items, e.g. follow-up suggestions) or
singleChoice (at most one, e.g. a search-box hint)."""
COMPONENTS: tuple[Component, ...] = ("multiChoice", "singleChoice")
DEFAULT_COMPONENT: Component = "multiChoice"


def check_component(value: object, field: str = "component") -> Component:
    """``value`` as a Component; a ValueError naming ``field``, the value and the choices."""
    if value == "multiChoice" or value == "singleChoice":
        return value
    raise ValueError(f"{field}: {value!r} is not one of {', '.join(COMPONENTS)}")


def list_reward(probs: Sequence[float], component: str) -> float:
    """The probability that the list gets a click.

    multiChoice (eq. 3): clicks are independent, r = 1 - prod(1 - p_k).
    singleChoice (eq. 4): at most one click, r = sum p_k, capped at 1 (the events are disjoint,
    so their sum is a probability; a miscalibrated model may predict more).
    """
    if check_component(component) == "singleChoice":
        return min(1.0, float(sum(probs)))
    miss = 1.0
    for p in probs:
        miss *= 1.0 - p
    return 1.0 - miss
