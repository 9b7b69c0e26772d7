"""The API's request and response bodies, with their documented limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_QUERY_CHARS = 512
MAX_HISTORY = 20
MAX_HISTORY_ITEM_CHARS = 512
MAX_AI_ANSWER_CHARS = 8000
MAX_KEY_CHARS = 256
MAX_NUM_QUERIES = 16
MAX_POSITIONS = 64


def _unicode(text: str) -> str:
    """Refuse lone surrogates (``"\\ud800"`` is valid JSON but not text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode text (lone surrogate at index {exc.start})") from None
    return text


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty or only whitespace")
    return text


Text = Annotated[str, AfterValidator(_unicode)]


class RecommendRequest(BaseModel):
    """One recommendation request from a search front end."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "task": "suggestion",
                    "query": "what is green tea",
                    "ai_answer": "Green tea is made from unoxidised leaves.",
                    "history": ["tea types"],
                    "user_key": "user-123",
                }
            ]
        },
    )

    task: str = Field(
        min_length=1, max_length=64, description="Task preset: suggestion, clarification, ..."
    )
    query: Annotated[Text, AfterValidator(_not_blank)] = Field(
        min_length=1, max_length=MAX_QUERY_CHARS, description="The user query."
    )
    history: list[Annotated[Text, Field(max_length=MAX_HISTORY_ITEM_CHARS)]] = Field(
        default_factory=list, max_length=MAX_HISTORY, description="Earlier session queries."
    )
    ai_answer: Text | None = Field(
        None, max_length=MAX_AI_ANSWER_CHARS, description="The AI answer the user read."
    )
    prefix: Text | None = Field(
        None, max_length=MAX_QUERY_CHARS, description="Typed prefix (completion task)."
    )
    user_key: Text | None = Field(
        None, max_length=MAX_KEY_CHARS, description="User key: sticky arm; stored hashed."
    )
    session_id: Text | None = Field(
        None, max_length=MAX_KEY_CHARS, description="Session key; used for the arm if no user."
    )
    num_queries: int | None = Field(
        None, ge=1, le=MAX_NUM_QUERIES, description="N; default and range come from the task."
    )


class RecommendResponse(BaseModel):
    """The recommended queries and where they came from."""

    impression_id: str = Field(description="Send it back with clicks to /v1/feedback.")
    task: str
    queries: list[str] = Field(description="In display order; positions are 0-based.")
    aux_texts: dict[str, str] = Field(description="E.g. guide/prefix/suffix (clarification).")
    arm: str | None = Field(
        None, description="Routing arm that served it (only with --expose-arm)."
    )
    model_version: str | None = Field(
        None, description="Model version that served it (only with --expose-arm)."
    )
    fallback: bool = Field(description="True when the LLM failed and COR alone answered.")
    fallback_reason: str | None = None
    reranked: bool = Field(False, description="True when the CTR predictor ordered the list.")


class FeedbackRequest(BaseModel):
    """Clicks on one impression; sending the same click again is harmless."""

    model_config = ConfigDict(extra="forbid")

    impression_id: Text = Field(min_length=1, max_length=128)
    user_key: Text | None = Field(
        None,
        max_length=MAX_KEY_CHARS,
        description="The user_key of the recommend request (required when it had one).",
    )
    session_id: Text | None = Field(
        None,
        max_length=MAX_KEY_CHARS,
        description="The session_id of the recommend request, when it had no user_key.",
    )
    positions: list[Annotated[int, Field(ge=0, lt=MAX_POSITIONS)]] = Field(
        min_length=1, max_length=MAX_POSITIONS, description="Clicked 0-based positions."
    )


class FeedbackResponse(BaseModel):
    impression_id: str
    recorded: list[int] = Field(description="Positions made durable by this call.")
    duplicates: list[int] = Field(description="Positions this replica had already recorded.")


class ErrorBody(BaseModel):
    error: str
    detail: str
