"""``GatewaySettings``: every knob of the gateway, from flags, ``GQR_GATEWAY_*`` env, defaults.

Precedence: command-line flag > environment variable > default. Each field's flag is its
name with dashes (``--log-root``), its variable ``GQR_GATEWAY_`` + the upper-case name.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_PREFIX = "GQR_GATEWAY_"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the flag, variable and value."""


class GatewaySettings(BaseModel):
    """How one gateway replica runs. Replicas of one deployment share ``log_root``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    log_root: str = Field(
        description="Log store root (folder or fsspec URL) shared by all replicas."
    )
    routing_file: Path | None = Field(
        None, description="Routing file (JSON/YAML), hot-reloaded; else one arm from --llm-*."
    )
    deployment: str = Field("local", description="GQRDeployment name written in records.")
    llm_kind: Literal["tgi", "openai", "local"] = Field(
        "tgi", description="Backend kind of the single arm used without a routing file."
    )
    llm_url: str = Field("", description="LLM server URL for the single arm.")
    llm_model: str = Field("", description="openai: model name; local: model folder.")
    model_version: str = Field("default", description="Model version of the single arm.")
    cor_root: str | None = Field(
        None,
        description="Artifact root holding cor/CURRENT and the COR versions (a folder, pvc://, "
        "s3://, gs://); off if unset.",
    )
    milvus_uri: str = Field(
        "", description="Milvus URI (http://host:19530 or a milvus-lite .db path); off if unset."
    )
    milvus_token_file: Path | None = Field(None, description="File holding the Milvus token.")
    milvus_prefix: str = Field(
        "gqr_cor",
        description="Milvus collection/alias prefix of this deployment's COR index (the one "
        "cor-build --collection-prefix wrote); deployments sharing a Milvus need their own.",
    )
    cor_encoder: str = Field(
        "minilm", description="COR query encoder: minilm | hashing[:DIM] | dir."
    )
    cor_k: int = Field(10, ge=1, le=100, description="Co-occurring queries put in the prompt.")
    cor_timeout_s: float = Field(
        0.05,
        gt=0,
        le=30,
        description="COR budget: the longest a request waits for an index (ANN) search; "
        "past it the request goes on with direct successors only.",
    )
    cor_cache_size: int = Field(
        20000,
        ge=0,
        description="COR results of index searches cached per version (LRU; ~3 KB each).",
    )
    cor_warm: int = Field(
        20000,
        ge=0,
        description="COR results searched ahead (batched) when a version loads: the last "
        "version's most recent, then the most frequent known queries with too few successors.",
    )
    cor_max_inflight: int = Field(
        4, ge=1, le=64, description="COR index searches running at once; more skip the ANN step."
    )
    cor_probe: int = Field(
        3,
        ge=1,
        le=256,
        description="Partitions of a partitioned COR collection each index search visits (the "
        "nearest by centroid); more: higher recall, slower search.",
    )
    cor_partitions: int | None = Field(
        None,
        ge=0,
        le=256,
        description="k-means partitions of a COR collection this gateway builds itself "
        "(embedded milvus-lite); default auto as cor-build (0 = none).",
    )
    ctr_url: str = Field("", description="CTR predictor (KServe V1) base URL; rerank off if unset.")
    ctr_model: str = Field("ctr", description="CTR predictor model name.")
    ctr_timeout_s: float = Field(0.5, gt=0, le=30, description="Budget of the whole rerank.")
    rerank: bool = Field(True, description="Over-generate 2N and keep the best N (needs ctr_url).")
    rerank_mode: Literal["pointwise", "greedy"] = Field(
        "pointwise",
        description="pointwise: one predictor call scoring each candidate at the top; "
        "greedy: N sequential calls, position by position (uses ctx predictors' context).",
    )
    admin_token_file: Path | None = Field(
        None, description="File with the admin bearer token; admin endpoints off if unset."
    )
    secret_key_file: Path | None = Field(
        None,
        description="Key for user-key hashing and impression-id tags, shared by replicas; "
        "default <log_root>/.gateway-secret (created once).",
    )
    request_budget_s: float = Field(3.0, gt=0, le=120, description="Most time one request takes.")
    max_body_bytes: int = Field(
        65536,
        ge=1024,
        le=16 << 20,
        description="Largest request body accepted; a larger one is answered 413 unparsed.",
    )
    click_timeout_s: float = Field(2.0, gt=0, le=60, description="Click durability budget.")
    spool_dir: Path | None = Field(
        None, description="Local disk buffer for impressions when the log store lags."
    )
    max_pending: int = Field(20000, ge=1, description="Impressions buffered in memory.")
    spool_max_bytes: int = Field(256 << 20, ge=0, description="Disk buffer cap, in bytes.")
    stats_refresh_s: float = Field(1.0, ge=0, le=300, description="Stats cache lifetime.")
    stats_max_window_s: float = Field(
        14 * 86400, gt=0, description="Longest /v1/stats window (and what stays indexed)."
    )
    pii_filters: str = Field(
        "all",
        description="Built-in output filters applied to every served query and aux text: all, "
        "none, or a comma list of url, email, phone, card, iban.",
    )
    blocklist_file: Path | None = Field(
        None,
        description="Blocklist (YAML/JSON: terms, regexes) applied to every served query and "
        "aux text; read at start (an invalid one stops the gateway), then hot-reloaded.",
    )
    routing_poll_s: float = Field(
        1.0, gt=0, le=300, description="Routing and blocklist file check interval."
    )
    preset_dirs: tuple[Path, ...] = Field((), description="Extra task preset folders.")
    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8000, ge=0, le=65535, description="Listen port.")
    log_level: str = Field("info", description="Python log level.")

    @field_validator("milvus_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        from gqr_serving.cor.index import check_prefix

        return check_prefix(value)

    @field_validator("pii_filters")
    @classmethod
    def _pii(cls, value: str) -> str:
        from gqr_serving.safety import parse_pii

        parse_pii(value)  # SafetyError (a ValueError) names the value and what is accepted
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        if self.routing_file is None and self.llm_kind != "local" and not self.llm_url:
            raise ValueError(
                "no LLM configured: pass --routing-file, or --llm-url (tgi/openai), "
                "or --llm-kind local --llm-model DIR"
            )
        if self.milvus_uri and self.cor_root is None:
            raise ValueError("--milvus-uri needs --cor-root (the COR artifact root)")
        return self

    @classmethod
    def from_sources(
        cls,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> GatewaySettings:
        """Settings from flags, then environment, then defaults; :class:`SettingsError` if bad."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            if (raw := env.get(ENV_PREFIX + name.upper())) is not None:
                values[name] = _split(name, raw)
        args = vars(make_parser().parse_args(list(argv or [])))
        values.update({k: _split(k, v) for k, v in args.items() if v is not None})
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(describe(exc)) from None


def _split(name: str, raw: str) -> Any:
    if name == "preset_dirs":
        return tuple(p for p in raw.split(os.pathsep) if p)
    return raw


def describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        where = (
            f"--{field.replace('_', '-')} ({ENV_PREFIX}{field.upper()})" if field else "settings"
        )
        value = err.get("input")
        shown = "" if field == "" or isinstance(value, dict) else f" = {value!r}"
        lines.append(f"{where}{shown}: {err['msg']}")
    return "invalid gateway settings:\n  " + "\n  ".join(lines)


def make_parser() -> argparse.ArgumentParser:
    """One flag per field (strings; pydantic converts and checks them)."""
    p = argparse.ArgumentParser(
        prog="gqr-gateway", description="Serve the GQR recommendation gateway."
    )
    for name, field in GatewaySettings.model_fields.items():
        p.add_argument(
            f"--{name.replace('_', '-')}", dest=name, default=None, help=field.description
        )
    return p
