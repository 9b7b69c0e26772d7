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

from gqr_serving.invalid import InvalidTrafficPolicy

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
    verify_key_files: tuple[Path, ...] = Field(
        (),
        description="Keys (files, separated by the path separator) that still open impression "
        "ids but never sign: the previous key after a rotation, the next one before it. A "
        "missing file is skipped; every key file is re-read every --key-reload-s.",
    )
    key_reload_s: float = Field(
        30.0, gt=0, le=3600, description="How often the key files are re-read (rotation)."
    )
    impression_ttl_s: float = Field(
        86400.0,
        ge=60,
        le=90 * 86400,
        description="Clicks are accepted for this long after an impression was shown.",
    )
    expose_arm: bool = Field(
        False,
        description="Tell clients the arm and model version that served them (off: a client "
        "cannot tell canary from stable traffic).",
    )
    request_budget_s: float = Field(3.0, gt=0, le=120, description="Most time one request takes.")
    max_body_bytes: int = Field(
        65536,
        ge=1024,
        le=16 << 20,
        description="Largest request body accepted; a larger one is answered 413 unparsed.",
    )
    click_timeout_s: float = Field(2.0, gt=0, le=60, description="Click durability budget.")
    impression_durability: Literal["async", "ack"] = Field(
        "async",
        description="async: /v1/recommend answers at once, its impression is written in the "
        "background (lost if the process dies before). ack: it answers once the impression is "
        "durable: fsync'd in the log store (a group commit shared by concurrent requests), or, "
        "past --impression-ack-timeout-s or on a store error, fsync'd in the spool; 503 when "
        "neither can take it.",
    )
    impression_ack_timeout_s: float = Field(
        0.5,
        gt=0,
        le=30,
        description="ack: the longest a request waits for the log store before its impression "
        "goes to the spool instead.",
    )
    spool_dir: Path | None = Field(
        None,
        description="Local disk buffer for impressions when the log store lags (default: "
        "<tmp>/gqr-gateway-spool; put it on a persistent volume). Replayed into the store, "
        "also after a crash.",
    )
    max_pending: int = Field(20000, ge=1, description="Impressions buffered in memory.")
    spool_max_bytes: int = Field(256 << 20, ge=0, description="Disk buffer cap, in bytes.")
    rate_recommend_user_per_s: float = Field(
        2.0,
        ge=0,
        description="Recommend requests per second per user key (else session id), per "
        "replica; 0 = no limit. Past it: 429 with Retry-After.",
    )
    rate_recommend_user_burst: int = Field(
        20, ge=0, description="Recommend requests one user may send at once."
    )
    rate_recommend_addr_per_s: float = Field(
        0.0,
        ge=0,
        description="Recommend requests per second per client address; 0 = no limit "
        "(the default: behind a front end or proxy one address carries every user; with "
        "--trusted-proxies or direct clients, e.g. 50).",
    )
    rate_recommend_addr_burst: int = Field(
        200, ge=0, description="Recommend requests one address may send at once."
    )
    rate_feedback_user_per_s: float = Field(
        2.0,
        ge=0,
        description="Feedback requests per second per user, where a feedback request names "
        "its user; 0 = no limit.",
    )
    rate_feedback_user_burst: int = Field(
        20, ge=0, description="Feedback requests one user may send at once."
    )
    rate_feedback_addr_per_s: float = Field(
        0.0,
        ge=0,
        description="Feedback requests per second per client address; 0 = no limit "
        "(the default: behind a front end or proxy one address carries every user; with "
        "--trusted-proxies or direct clients, e.g. 50).",
    )
    rate_feedback_addr_burst: int = Field(
        200, ge=0, description="Feedback requests one address may send at once."
    )
    rate_max_keys: int = Field(
        100_000, ge=1, description="Most rate-limit buckets kept per endpoint and key kind."
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="CIDRs of proxies whose X-Forwarded-For is believed (comma-separated): "
        "a request from one is limited by the nearest hop not in them.",
    )
    invalid_min_click_ms: int = Field(
        0,
        ge=0,
        description="A click sooner than this after its impression is invalid traffic "
        "(logged, not counted); 0 = off.",
    )
    invalid_all_positions_n: int = Field(
        3,
        ge=0,
        description="An impression of at least this many queries with every one clicked is "
        "invalid traffic; 0 = off.",
    )
    invalid_user_clicks_per_h: int = Field(
        300,
        ge=0,
        description="Clicks past this many in an hour by one user (where feedback names its "
        "user) are invalid traffic; 0 = off.",
    )
    log_retention_days: int = Field(
        0,
        ge=0,
        le=3650,
        description="Delete log store day folders (every record kind) older than this many "
        "days, never an open segment; 0 = keep everything. Every replica prunes (the deletes "
        "are idempotent).",
    )
    log_retention_interval_s: float = Field(
        3600.0, ge=1, le=7 * 86400, description="How often the log store is pruned."
    )
    log_compact_interval_s: float = Field(
        3600.0,
        ge=0,
        le=7 * 86400,
        description="How often the log store's closed day folders are compacted into Parquet "
        "for the columnar readers (gqr_serving.logstore.compact); 0 = never. Every replica "
        "compacts (idempotent).",
    )
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
    internal_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of /v1/stats, /metrics and /admin (0: they share --port). Set, the "
        "traffic port serves only /v1/recommend, /v1/feedback and the probes.",
    )
    log_level: str = Field("info", description="Python log level.")

    @field_validator("milvus_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        from gqr_serving.cor.index import check_prefix

        return check_prefix(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from gqr_serving.gateway.ratelimit import parse_networks

        parse_networks(value)
        return value

    def invalid_traffic_policy(self) -> InvalidTrafficPolicy:
        """The invalid-traffic thresholds these settings give (the rest at their defaults)."""
        return InvalidTrafficPolicy(
            min_click_ms=self.invalid_min_click_ms,
            all_positions_n=self.invalid_all_positions_n,
            user_clicks_per_h=self.invalid_user_clicks_per_h,
        )

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
        if (
            self.routing_file is None
            and self.llm_kind == "local"
            and not _has("torch", "transformers")
        ):
            raise ValueError(
                "--llm-kind local runs the model in this process and needs torch and transformers, "
                "which the gateway image leaves out: point --llm-url at a TGI or vLLM server "
                "(--llm-kind tgi|openai), or install the 'serve' and 'train' extras"
            )
        if self.verify_key_files and self.secret_key_file is None:
            raise ValueError("--verify-key-files needs --secret-key-file (the signing key)")
        if self.internal_port and self.internal_port == self.port:
            raise ValueError(f"--internal-port {self.internal_port} is also --port")
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
    if name in ("preset_dirs", "verify_key_files"):
        return tuple(p for p in raw.split(os.pathsep) if p)
    if name == "trusted_proxies":
        return tuple(p.strip() for p in raw.split(",") if p.strip())
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


def _has(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)
