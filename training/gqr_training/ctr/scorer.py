"""In-process scoring API of a trained CTR artifact: p_k for every query of a list and the
list reward (eq. 3 multi-choice, eq. 4 single-choice), one forward pass per batch of lists."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gqr_contracts.reward import COMPONENTS, Component, list_reward
from gqr_training.ctr.users import UserPropensity

MAX_QUERY_CHARS = 1000
MAX_USER_KEY_CHARS = 256


class ScoringInputError(ValueError):
    """A request the scorer refuses; ``field`` names the offending input (for 4xx replies)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _check_text(field: str, value: Any, *, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise ScoringInputError(field, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ScoringInputError(field, "must not be empty")
    if len(value) > MAX_QUERY_CHARS:
        raise ScoringInputError(
            field, f"is {len(value)} characters long; at most {MAX_QUERY_CHARS} are accepted"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ScoringInputError(field, f"is not valid UTF-8 text ({e.reason})") from None
    return value


def validate_list(
    user_query: Any, queries: Any, max_positions: int, prefix: str = ""
) -> tuple[str, list[str]]:
    """Check one (user query, list) pair; errors name the field, e.g. ``queries[2]``."""
    user = _check_text(f"{prefix}query", user_query, allow_empty=True)
    if not isinstance(queries, list | tuple):
        raise ScoringInputError(f"{prefix}queries", "expected a list of strings")
    if not queries:
        raise ScoringInputError(f"{prefix}queries", "must hold at least one query")
    if len(queries) > max_positions:
        raise ScoringInputError(
            f"{prefix}queries",
            f"has {len(queries)} queries; this model was trained on at most {max_positions} "
            "positions",
        )
    return user, [
        _check_text(f"{prefix}queries[{k}]", q, allow_empty=False) for k, q in enumerate(queries)
    ]


def validate_user_key(value: Any, field: str) -> str | None:
    """A hashed user key (a string of at most MAX_USER_KEY_CHARS) or None (unknown)."""
    if value is not None and (not isinstance(value, str) or len(value) > MAX_USER_KEY_CHARS):
        raise ScoringInputError(
            field, f"expected a string of at most {MAX_USER_KEY_CHARS} characters (the hashed key)"
        )
    return value


class CTRScorer:
    """Loaded artifact + tokenizer; thread-compatible for reads (one forward at a time)."""

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu") -> None:
        from gqr_training.ctr.batches import InputEncoder

        self.model = model.to(device).eval()
        self.device = device
        self.encoder = InputEncoder(tokenizer, model.config)
        self.max_positions: int = model.config.max_positions
        self.variant: str = model.config.variant
        self.users: UserPropensity | None = None
        """Per-user multipliers (users.py) when the artifact has them; applied to the p_k of
        lists scored with a user key."""

    @classmethod
    def load(cls, artifact_dir: str | Path, device: str = "cpu") -> CTRScorer:
        from gqr_training.ctr.artifact import TOKENIZER_DIR
        from gqr_training.ctr.model import CTRModel
        from gqr_training.ctr.tokenization import load_tokenizer

        directory = Path(artifact_dir)
        if not (directory / "ctr_config.json").is_file():
            raise FileNotFoundError(f"{directory} is not a CTR artifact (no ctr_config.json)")
        model = CTRModel.load(directory, device)
        scorer = cls(model, load_tokenizer(directory / TOKENIZER_DIR), device)
        scorer.users = UserPropensity.load(directory)
        return scorer

    def score(
        self, user_query: str, queries: Sequence[str], user_key: str | None = None
    ) -> list[float]:
        """p_k = P(click q_k | user query, q_1..q_{k-1}) for each query, in display order;
        with ``user_key`` (hashed, as logged) times that user's propensity when known."""
        return self.score_batch([(user_query, queries)], user_keys=[user_key])[0]

    def personalise(
        self, probs: Sequence[list[float]], user_keys: Sequence[str | None] | None
    ) -> list[list[float]]:
        """``probs`` of lists scored without users, times each list's user's multiplier."""
        if user_keys is None or self.users is None:
            return list(probs)
        if len(user_keys) != len(probs):
            raise ScoringInputError(
                "user_keys", f"{len(user_keys)} given for {len(probs)} lists; one per list"
            )
        for i, u in enumerate(user_keys):
            validate_user_key(u, f"[{i}].user_key")
        users = self.users
        return [users.apply(p, u) for p, u in zip(probs, user_keys, strict=True)]

    def score_batch(
        self,
        pairs: Sequence[tuple[str, Sequence[str]]],
        max_batch_size: int | None = None,
        user_keys: Sequence[str | None] | None = None,
    ) -> list[list[float]]:
        """p_k of many lists in one forward pass (or chunks of ``max_batch_size`` inputs)."""
        return self.personalise(self._score_batch(pairs, max_batch_size), user_keys)

    def _score_batch(
        self, pairs: Sequence[tuple[str, Sequence[str]]], max_batch_size: int | None = None
    ) -> list[list[float]]:
        from gqr_training.ctr.batches import predict_probs

        checked = [
            validate_list(u, q, self.max_positions, prefix=f"[{i}]." if len(pairs) > 1 else "")
            for i, (u, q) in enumerate(pairs)
        ]
        encoded = self.encoder.encode_lists(checked)
        if not encoded:
            return []
        flat = predict_probs(
            self.model,
            self.encoder,
            encoded,
            batch_size=max_batch_size or len(encoded),
            device=self.device,
        )
        out, lo = [], 0
        for _, queries in checked:
            out.append(flat[lo : lo + len(queries)])
            lo += len(queries)
        return out

    def list_reward(
        self, user_query: str, queries: Sequence[str], component: Component = "multiChoice"
    ) -> float:
        return list_reward(self.score(user_query, queries), component)

    def list_reward_batch(
        self,
        pairs: Sequence[tuple[str, Sequence[str]]],
        component: Component = "multiChoice",
        max_batch_size: int | None = None,
    ) -> list[float]:
        if component not in COMPONENTS:
            raise ScoringInputError("component", f"{component!r} is not one of {COMPONENTS}")
        return [list_reward(p, component) for p in self.score_batch(pairs, max_batch_size)]
