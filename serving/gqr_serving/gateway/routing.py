"""The routing file: arms with weights, backends, model versions and decoding.

```yaml
salt: exp-2025-03          # changing it reshuffles every user; keep it across weight changes
decoding: {temperature: 0.7, top_p: 0.9, max_new_tokens: 64, seed_policy: per_user}
arms:
  - {name: stable, weight: 90, model_version: v7, backend: {kind: tgi, url: http://llm-v7}}
  - {name: canary, weight: 10, model_version: v8, backend: {kind: tgi, url: http://llm-v8},
     decoding: {temperature: 0.5}}
```
JSON with the same fields works too. An arm's ``decoding`` overrides the top-level one field
by field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gqr_serving.backends import BackendSpec
from gqr_serving.gateway.ids import check_arm, check_version


class RoutingError(ValueError):
    """The routing file is missing, unparsable or invalid; the message says where."""


class Decoding(BaseModel):
    """Decoding randomness; every field optional so an arm can override a few."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(None, ge=0, le=2, description="0 = greedy.")
    top_p: float | None = Field(None, gt=0, le=1)
    max_new_tokens: int | None = Field(None, ge=1, le=1024)
    seed_policy: Literal["fixed", "per_request", "per_user"] | None = Field(
        None,
        description="fixed: always `seed`; per_request: random; per_user: from the hashed "
        "user key (a user sees stable suggestions), random without a key.",
    )
    seed: int | None = Field(None, ge=0, lt=2**31)
    stop: tuple[str, ...] | None = None

    def over(self, base: Decoding) -> Decoding:
        """This decoding with unset fields taken from ``base``."""
        return base.model_copy(update=self.model_dump(exclude_none=True))


DEFAULT_DECODING = Decoding(
    temperature=0.7, top_p=0.9, max_new_tokens=64, seed_policy="per_request", seed=0, stop=()
)


class ArmConfig(BaseModel):
    """One arm: a share of users, a model version and how to reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    weight: float = Field(ge=0, description="Relative share; 0 keeps the arm but sends no one.")
    model_version: str
    backend: BackendSpec
    decoding: Decoding = Field(default_factory=Decoding)
    rerank: bool | None = Field(None, description="Override the gateway's --rerank for this arm.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_arm(v)

    @field_validator("model_version")
    @classmethod
    def _version(cls, v: str) -> str:
        return check_version(v)

    @model_validator(mode="after")
    def _backend(self) -> ArmConfig:
        self.backend.check()
        return self


class RoutingConfig(BaseModel):
    """The whole routing table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    salt: str = Field("", max_length=128, description="Hash salt of the user -> arm assignment.")
    decoding: Decoding = Field(default_factory=Decoding)
    arms: tuple[ArmConfig, ...] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _arms(self) -> RoutingConfig:
        names = [a.name for a in self.arms]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"arm names must be unique; repeated: {dup}")
        if sum(a.weight for a in self.arms) <= 0:
            raise ValueError("at least one arm needs a weight > 0")
        return self

    def decoding_of(self, arm: ArmConfig) -> Decoding:
        return arm.decoding.over(self.decoding.over(DEFAULT_DECODING))


def parse_routing(text: str, source: str = "<routing>") -> RoutingConfig:
    """Parse JSON or YAML routing text; :class:`RoutingError` names the file and field."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise RoutingError(f"{source}: not valid JSON/YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RoutingError(f"{source}: expected a mapping with 'arms', got {type(data).__name__}")
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError as exc:
        errs = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        ]
        raise RoutingError(f"{source}: " + "; ".join(errs)) from None


def load_routing(path: Path) -> RoutingConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutingError(f"{path}: cannot read the routing file: {exc}") from None
    return parse_routing(text, str(path))
