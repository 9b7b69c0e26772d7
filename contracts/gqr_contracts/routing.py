"""The gateway's routing document: arms with weights, backends, model versions and decoding.
The operator writes it into the routing ConfigMap; the gateway loads it (and reloads it on
change) with ``gqr_serving.gateway.routing_file.load_routing``.

```yaml
salt: exp-2025-03          # changing it reshuffles every user; keep it across weight changes
decoding: {temperature: 0.7, top_p: 0.9, max_new_tokens: 64, seed_policy: per_user}
arms:
  - {name: stable, weight: 90, model_version: v7, backend: {kind: tgi, url: http://llm-v7}}
  - {name: canary, weight: 10, model_version: v8, backend: {kind: tgi, url: http://llm-v8},
     decoding: {temperature: 0.5}}
```
JSON with the same fields works too. An arm's ``decoding`` overrides the top-level one field
by field, which overrides :data:`DEFAULT_DECODING`.
"""

from __future__ import annotations

import json
import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ARM_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,15}$"
MAX_FEW_SHOT = 16
"""Most few-shot demonstrations an arm may carry."""
PACKAGED_DEMONSTRATIONS: dict[str, int] = {"suggestion": 5}
"""Few-shot demonstrations the gateway carries per built-in task
(``gqr_serving/prompt/tasks/<task>.demos.json``); a task not named has none."""
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,39}$"


def check_arm(name: str) -> str:
    if not re.match(ARM_PATTERN, name):
        raise ValueError(f"arm name {name!r}: use 1-16 of a-z 0-9 _ -, starting a-z or 0-9")
    return name


def check_version(version: str) -> str:
    if not re.match(VERSION_PATTERN, version):
        raise ValueError(
            f"model_version {version!r}: use 1-40 of A-Z a-z 0-9 _ . : + -, starting alphanumeric"
        )
    return version


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Decoding(_Frozen):
    """Decoding randomness; every field optional so an arm can override a few."""

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


DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.9
DEFAULT_DECODING = Decoding(
    temperature=DEFAULT_TEMPERATURE,
    top_p=DEFAULT_TOP_P,
    max_new_tokens=64,
    seed_policy="per_request",
    seed=0,
    stop=(),
)
"""How the gateway decodes when neither the document nor the arm says: the CRD's
spec.llm.decoding defaults, and how dpo-iterate samples the test responses it scores."""


class BackendSpec(_Frozen):
    """Where an arm's LLM runs and how hard to try it."""

    kind: Literal["tgi", "openai", "local"] = Field(
        "tgi", description="tgi (TGI's own API), openai (vLLM/SGLang/TGI /v1), local."
    )
    url: str = Field("", description="Server base URL (tgi, openai).")
    model: str = Field("", description="openai: model name; local: model folder.")
    mode: Literal["completions", "chat"] = Field("completions", description="openai only.")
    transport: Literal["client", "http"] = Field(
        "client",
        description="tgi: huggingface_hub's inference client, or plain HTTP /generate.",
    )
    adapter_id: str | None = Field(None, description="TGI LoRA adapter to select.")
    timeout_s: float = Field(2.0, gt=0, le=120, description="Per-attempt timeout.")
    max_retries: int = Field(1, ge=0, le=5, description="Retries after a failed attempt.")
    failure_threshold: int = Field(5, ge=1, le=1000, description="Failures that open the breaker.")
    reset_after_s: float = Field(5.0, gt=0, le=600, description="Open time before a probe.")

    def check(self) -> Self:
        if self.kind in ("tgi", "openai") and not self.url:
            raise ValueError(f"backend kind {self.kind!r} needs 'url'")
        if self.kind == "openai" and not self.model:
            raise ValueError("backend kind 'openai' needs 'model' (the served model name)")
        if self.kind == "local" and not self.model:
            raise ValueError("backend kind 'local' needs 'model' (a model folder)")
        return self


class ArmConfig(_Frozen):
    """One arm: a share of users, a model version and how to reach it."""

    name: str
    weight: float = Field(ge=0, description="Relative share; 0 keeps the arm but sends no one.")
    model_version: str
    backend: BackendSpec
    decoding: Decoding = Field(default_factory=Decoding)
    rerank: bool | None = Field(None, description="Override the gateway's --rerank for this arm.")
    few_shot: int = Field(
        0,
        ge=0,
        le=MAX_FEW_SHOT,
        description="Packaged demonstrations put before each prompt (few-shot prompting of a "
        "base model that was never fine-tuned to the template); 0 = the prompt alone.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_arm(v)

    @field_validator("model_version")
    @classmethod
    def _version(cls, v: str) -> str:
        return check_version(v)

    @model_validator(mode="after")
    def _backend(self) -> Self:
        self.backend.check()
        return self


class RoutingConfig(_Frozen):
    """The whole routing table."""

    salt: str = Field("", max_length=128, description="Hash salt of the user -> arm assignment.")
    decoding: Decoding = Field(default_factory=Decoding)
    arms: tuple[ArmConfig, ...] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _arms(self) -> Self:
        names = [a.name for a in self.arms]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"arm names must be unique; repeated: {dup}")
        if sum(a.weight for a in self.arms) <= 0:
            raise ValueError("at least one arm needs a weight > 0")
        return self

    def decoding_of(self, arm: ArmConfig) -> Decoding:
        return arm.decoding.over(self.decoding.over(DEFAULT_DECODING))

    def to_document(self) -> str:
        """The JSON the gateway loads: only the fields the writer set, keys sorted, so the
        same table always gives the same text (no needless ConfigMap writes)."""
        doc = self.model_dump(mode="json", exclude_unset=True)
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"
