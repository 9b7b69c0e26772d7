"""``PromptRequest``: what one recommendation is asked for (task, user query, side information).

Side information reuses :class:`gqr_serving.records.SideInfo`, so the request's ``side_info``
goes into the impression record unchanged.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gqr_serving.prompt.presets import MAX_QUERIES, NAME_PATTERN
from gqr_serving.records import SideInfo


class PromptRequest(BaseModel):
    """One request to the universal template.

    ``num_queries`` overrides the preset's default N; the preset's range is checked when the
    request is rendered (the request alone does not know the preset). ``extra`` holds side
    information for sections that a custom preset declares beyond the SideInfo fields.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str = Field(pattern=NAME_PATTERN, description="Task preset name, e.g. 'suggestion'.")
    query: str = Field(max_length=4000, description="The user query; required, not blank.")
    side_info: SideInfo = Field(default_factory=SideInfo)
    num_queries: int | None = Field(
        None, ge=1, le=MAX_QUERIES, description="Override of the preset's N."
    )
    extra: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Custom sections' side information, by section name."
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("query must not be empty or only whitespace")
        return stripped
