"""Task presets: the data model of one query recommendation task (``TaskPreset``).

A preset is data, not code: the built-in ones are YAML files in ``tasks/``, and a new task is
a new YAML file (see :mod:`gqr_serving.prompt.loading`). The template renders any preset, the
parser reads any preset's responses, and :func:`~gqr_serving.prompt.constraints.enforce`
checks its constraints.
"""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gqr_contracts.reward import Component
from gqr_serving.records import SideInfo

# One list never holds more than this many queries (ClickRecord.position is 0..63).
MAX_QUERIES = 64
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
# Tags the template itself uses; a side-information section may not take one of these names.
RESERVED_SECTIONS = frozenset({"instructions", "query", "response_format", "response"})
SIDE_INFO_FIELDS = tuple(SideInfo.model_fields)
# A line that looks like a section tag. Trusted preset text must not hold one, or the rendered
# prompt could not be split back into its sections unambiguously.
TAG_LINE = re.compile(r"^[ \t]*</?[a-z][a-z0-9_]{0,39}>[ \t]*$", re.MULTILINE)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SectionSpec(_Frozen):
    """One side-information section of the prompt."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Tag name: a SideInfo field (" + ", ".join(SIDE_INFO_FIELDS) + ") "
        "or a key of PromptRequest.extra.",
    )
    title: str = Field(min_length=1, max_length=300, description="What it holds; told to the LLM.")
    required: bool = Field(False, description="Rendering fails when the request lacks it.")
    max_items: int = Field(20, ge=1, le=500, description="List sections keep this many items.")
    keep: Literal["first", "last"] = Field(
        "first", description="Which items a long list keeps: 'last' = the newest history."
    )
    max_chars: int = Field(
        2000, ge=1, le=100_000, description="Each item (or the text) is cut to this length."
    )


class AuxTextSpec(_Frozen):
    """An auxiliary text the LLM writes before the queries, e.g. a guide sentence."""

    name: str = Field(pattern=NAME_PATTERN, description="Label, written as 'name: text'.")
    description: str = Field(min_length=1, max_length=300, description="Told to the LLM.")
    required: bool = Field(True, description="A response without it is reported.")
    max_chars: int = Field(200, ge=1, le=2000, description="Longer texts are cut.")


class QueryCount(_Frozen):
    """How many queries a response holds: the default N and the range a request may ask."""

    default: int = Field(ge=1, le=MAX_QUERIES)
    min: int = Field(1, ge=1, le=MAX_QUERIES)
    max: int = Field(ge=1, le=MAX_QUERIES)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.min <= self.default <= self.max:
            raise ValueError(
                f"need min <= default <= max, got min={self.min}, default={self.default}, "
                f"max={self.max}"
            )
        return self


class Constraints(_Frozen):
    """What every recommended query must satisfy; checked after parsing."""

    max_chars: int = Field(64, ge=1, le=1000, description="Longest query, in characters.")
    max_words: int = Field(16, ge=1, le=200, description="Longest query, in words.")
    overlong: Literal["truncate", "drop"] = Field(
        "drop", description="What the parser does with a query over a length limit."
    )
    must_start_with_prefix: bool = Field(
        False, description="Queries must start with the typed prefix (or the query)."
    )
    exclude_user_query: bool = Field(
        True, description="Drop queries equal to, or near copies of, the user query."
    )
    near_copy_threshold: float = Field(
        0.9, gt=0.0, le=1.0, description="Similarity ratio at which a query is a near copy."
    )
    must_come_from_history: bool = Field(
        False, description="Queries must be items of the session history (hint)."
    )


class TaskPreset(_Frozen):
    """One query recommendation task, rendered by the universal template."""

    name: str = Field(pattern=NAME_PATTERN, description="Preset name; the YAML file's stem.")
    description: str = Field("", max_length=500, description="For people, not for the LLM.")
    component: Component = Field(
        description="multiChoice (list reward 1 - prod(1 - p_k)) or singleChoice (sum p_k)."
    )
    instructions: str = Field(min_length=1, max_length=8000, description="Task instructions.")
    sections: tuple[SectionSpec, ...] = Field((), description="Side information, in order.")
    aux_texts: tuple[AuxTextSpec, ...] = Field((), description="Texts before the queries.")
    num_queries: QueryCount
    constraints: Constraints = Field(default_factory=Constraints)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [s.name for s in self.sections]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"section names must be unique; repeated: {dup}")
        if bad := sorted(set(names) & RESERVED_SECTIONS):
            raise ValueError(
                f"section names {bad} are reserved by the template; "
                f"reserved: {sorted(RESERVED_SECTIONS)}"
            )
        aux = [a.name for a in self.aux_texts]
        if dup := sorted({n for n in aux if aux.count(n) > 1}):
            raise ValueError(f"aux_texts names must be unique; repeated: {dup}")
        if self.constraints.must_come_from_history and "history" not in names:
            raise ValueError("constraints.must_come_from_history needs a 'history' section")
        trusted = [self.instructions, *(s.title for s in self.sections)]
        trusted += [a.description for a in self.aux_texts]
        for text in trusted:
            if match := TAG_LINE.search(text):
                raise ValueError(
                    f"preset text may not hold a line that looks like a section tag "
                    f"({match.group(0).strip()!r}); it would break the prompt's structure"
                )
        return self

    def section(self, name: str) -> SectionSpec | None:
        return next((s for s in self.sections if s.name == name), None)

    def resolve_num_queries(self, requested: int | None) -> int:
        """The N to ask for; raises ``ValueError`` naming the field, value and range."""
        if requested is None:
            return self.num_queries.default
        low, high = self.num_queries.min, self.num_queries.max
        if not low <= requested <= high:
            raise ValueError(
                f"num_queries={requested} is outside the range {low}..{high} accepted by "
                f"preset {self.name!r}; omit it to get the default ({self.num_queries.default})"
            )
        return requested
