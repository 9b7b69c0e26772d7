"""Spec sections of what serves traffic: task, LLM servers, CTR predictor, COR, gateway."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from gqr_contracts.reward import DEFAULT_COMPONENT, Component
from gqr_contracts.routing import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from gqr_operator.models.common import (
    ConfigMapKeyRef,
    Model,
    Quantity,
    ResourceRequirements,
    SecretKeyRef,
    SecretRef,
)
from gqr_operator.models.markers import Rule, cel_string, list_map, validations
from gqr_operator.models.placement import Placement

Image = Annotated[str, Field(min_length=1, max_length=512)]
DnsLabel = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]

TaskType = Literal["suggestion", "clarification", "hint", "completion"]
# Inclusive numQueries range per task type: the validator below and the CRD's CEL rules.
NUM_QUERIES: dict[str, tuple[int, int]] = {
    "suggestion": (1, 10),
    "clarification": (2, 16),
    "hint": (1, 1),
    "completion": (1, 10),
}


def _num_queries_rule(kind: str, low: int, high: int) -> Rule:
    if low == high:
        return Rule(
            f"self.type != '{kind}' || self.numQueries == {low}",
            f"spec.task.numQueries must be {low} for type {kind}",
        )
    return Rule(
        f"self.type != '{kind}' || (self.numQueries >= {low} && self.numQueries <= {high})",
        f"spec.task.numQueries must be {low}-{high} for type {kind}",
    )


class Task(Model):
    """Which recommendation component this deployment serves."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            *(_num_queries_rule(kind, *bounds) for kind, bounds in NUM_QUERIES.items()),
            Rule(
                "self.type != 'hint' || self.component == 'singleChoice'",
                "spec.task.component must be singleChoice for type hint",
            ),
        )
    )

    type: TaskType = Field(
        json_schema_extra=validations(
            Rule(
                "self == oldSelf",
                "spec.task.type is immutable; create a new GQRDeployment for another task",
            )
        )
    )
    """Recommendation task: suggestion (follow-ups under an answer), clarification (refinement
    snippets), hint (one query in the search box), completion (query completions). Immutable."""
    num_queries: int = Field(default=3, ge=1, le=16)
    """Number of queries recommended per request. Allowed range depends on type: suggestion
    1-10, clarification 2-16, hint exactly 1, completion 1-10."""
    component: Component = DEFAULT_COMPONENT
    """UI component: multiChoice (several queries shown at once; list reward 1-prod(1-p_k)) or
    singleChoice (one is picked; list reward sum p_k). hint requires singleChoice."""
    aux_texts: list[
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=256,
                description="Name or instruction of one auxiliary text.",
            ),
        ]
    ] = Field(default_factory=list, max_length=8)
    """Auxiliary texts generated with the queries (e.g. a heading shown above them)."""

    @model_validator(mode="after")
    def _task_rules(self) -> Self:
        low, high = NUM_QUERIES[self.type]
        if not low <= self.num_queries <= high:
            raise ValueError(
                f"spec.task.numQueries={self.num_queries} is out of range for type "
                f"{self.type} (accepted: {low}-{high})"
            )
        if self.type == "hint" and self.component != "singleChoice":
            raise ValueError(
                f"spec.task.component={self.component} is not allowed for type hint "
                "(accepted: singleChoice)"
            )
        return self


class PvcStorage(Model):
    """Weights read from a PersistentVolumeClaim, mounted read-only."""

    claim_name: DnsLabel
    """Name of the PersistentVolumeClaim in this namespace; must match the claim in
    spec.llm.model."""


class ObjectStore(Model):
    """Weights fetched from S3/GCS by an init container; credentials only via the Secret."""

    endpoint: str | None = Field(default=None, max_length=512, pattern=r"^https?://\S+$")
    """Endpoint URL of an S3-compatible store (e.g. MinIO). Left out: the provider's default."""
    region: str | None = Field(default=None, max_length=63)
    """Region of the object store."""
    secret_ref: SecretRef
    """Secret whose keys (e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) are exposed as
    environment variables to the fetching init container only."""


class ModelStorage(Model):
    """Where model weights come from: a PVC or an object store (at most one)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "!(has(self.pvc) && has(self.objectStore))",
                "spec.llm.modelStorage: set pvc or objectStore, not both",
            )
        )
    )

    pvc: PvcStorage | None = None
    """A PersistentVolumeClaim holding the weights, mounted read-only. Mutually exclusive with
    objectStore."""
    object_store: ObjectStore | None = None
    """An S3/GCS object store the weights are fetched from by an init container. Mutually
    exclusive with pvc."""
    cache_size: str = Field(default="50Gi", max_length=32, pattern=r"^[0-9]+(Mi|Gi|Ti)$")
    """Size limit of the emptyDir that holds fetched weights and the runtime's cache."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.pvc is not None and self.object_store is not None:
            raise ValueError(
                "spec.llm.modelStorage: pvc and objectStore are both set (accepted: one of them)"
            )
        return self


class LoraAdapter(Model):
    """One LoRA adapter, loaded next to the base model."""

    name: DnsLabel
    """Adapter name that requests select it by (a DNS label)."""
    uri: str = Field(max_length=512, pattern=r"^(s3|gs|hf|pvc)://\S+$")
    """URI of the adapter weights (s3://, gs://, pvc:// or hf://), read like spec.llm.model."""


class Decoding(Model):
    """Sampling settings the gateway sends with every generation request; dpo-iterate's AEC
    gate samples its test responses with the same temperature and topP."""

    temperature: float = Field(default=DEFAULT_TEMPERATURE, ge=0.0, le=2.0)
    """Sampling temperature; 0 means greedy."""
    top_p: float = Field(default=DEFAULT_TOP_P, gt=0.0, le=1.0)
    """Nucleus sampling probability mass."""
    max_new_tokens: int = Field(default=128, ge=1, le=2048)
    """Most tokens generated per request."""
    seed_policy: Literal["perRequest", "perUser", "fixed"] = "perRequest"
    """How the sampling seed is chosen: perRequest (a new seed per request, the paper's online
    exploration), perUser (stable per hashed user key), fixed (always seed)."""
    seed: int = Field(default=0, ge=0, le=2147483647)
    """Seed used when seedPolicy is fixed."""


# What the operator itself sets on the LLM server (llm.py; a test holds the two in step): the
# engine's extraArgs and env may not set these, whichever the runtime.
ENGINE_FLAGS = (
    # vLLM
    "--model", "--served-model-name", "--host", "--port", "--max-model-len",
    "--tensor-parallel-size", "-tp", "--enable-lora", "--max-loras", "--lora-modules",
    # TGI (text-generation-launcher; the operator sets these through its environment)
    "--model-id", "--hostname", "--max-input-tokens", "--max-input-length",
    "--max-total-tokens", "--max-batch-prefill-tokens", "--huggingface-hub-cache",
    "--lora-adapters", "--num-shard",
)  # fmt: skip
ENGINE_ENV = (
    "HOME", "HF_HOME", "XDG_CACHE_HOME", "HF_TOKEN",
    "MODEL_ID", "PORT", "HOSTNAME", "MAX_INPUT_TOKENS", "MAX_TOTAL_TOKENS",
    "MAX_BATCH_PREFILL_TOKENS", "HUGGINGFACE_HUB_CACHE", "LORA_ADAPTERS", "NUM_SHARD",
)  # fmt: skip
# A flag as given (--flag or --flag=value; vLLM reads '_' in a flag name as '-').
RESERVED_FLAG_PATTERN = (
    "^("
    + "|".join(
        f"{f[: len(f) - len(f.lstrip('-'))]}{f.lstrip('-').replace('-', '[-_]')}"
        for f in ENGINE_FLAGS
    )
    + ")(=.*)?$"
)
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Names that look like credentials take their value from a Secret, never a literal.
CREDENTIAL_NAME_PATTERN = r"(?i)(^|_)(TOKEN|PASSWORD|SECRET|ACCESS_KEY|CREDENTIALS?)($|_)"


class EnvVarSource(Model):
    """Where an environment variable's value comes from."""

    secret_key_ref: SecretKeyRef
    """A key of a Secret in this namespace."""


class EnvVar(Model):
    """One environment variable of the LLM engine: a literal value or a Secret key."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "has(self.value) != has(self.valueFrom)",
                "spec.llm.env: set value or valueFrom, exactly one",
            ),
            Rule(
                f"!has(self.value) || !self.name.matches({cel_string(CREDENTIAL_NAME_PATTERN)})",
                "spec.llm.env: a credential-like name takes its value from "
                "valueFrom.secretKeyRef, not a literal value",
            ),
        )
    )

    name: str = Field(min_length=1, max_length=128, pattern=ENV_NAME_PATTERN)
    """Variable name (letters, digits, '_'; not starting with a digit)."""
    value: str | None = Field(default=None, max_length=8192)
    """Literal value."""
    value_from: EnvVarSource | None = None
    """Value read from a Secret key (for tokens and other credentials)."""

    @model_validator(mode="after")
    def _one_value(self) -> Self:
        if (self.value is None) == (self.value_from is None):
            raise ValueError(
                f"spec.llm.env {self.name}: set value or valueFrom (accepted: exactly one)"
            )
        if self.value is not None and re.search(CREDENTIAL_NAME_PATTERN, self.name):
            raise ValueError(
                f"spec.llm.env {self.name} looks like a credential and has a literal value "
                "(accepted: valueFrom.secretKeyRef)"
            )
        return self


class UpdateStrategy(Model):
    """How a changed LLM server Deployment replaces its pods (RollingUpdate)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "(has(self.maxSurge) ? self.maxSurge : 1) > 0 || "
                "(has(self.maxUnavailable) ? self.maxUnavailable : 0) > 0",
                "spec.llm.updateStrategy: maxSurge and maxUnavailable may not both be 0",
            )
        )
    )

    max_surge: int = Field(default=1, ge=0, le=64)
    """Pods started above the replica count during an update. 1 (the default) keeps a
    one-replica server serving, but the new pod needs its GPUs while the old one holds its
    own: where the GPU quota or the nodes cannot fit one more server, the new pod stays
    Pending (the old one serves on) until maxSurge 0 / maxUnavailable 1 is set."""
    max_unavailable: int = Field(default=0, ge=0, le=64)
    """Pods that may be down during an update. 0 (the default): none until its successor is
    ready; 1 with maxSurge 0 frees the GPUs first, at the cost of a one-replica server's
    availability."""

    @model_validator(mode="after")
    def _progress(self) -> Self:
        if self.max_surge == 0 and self.max_unavailable == 0:
            raise ValueError(
                "spec.llm.updateStrategy.maxSurge=0 with maxUnavailable=0 never replaces a pod "
                "(accepted: at least one of them above 0)"
            )
        return self


class Llm(Placement):
    """The LLM server, one Deployment per model version (stable, canary)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "self.maxTotalTokens > self.maxInputTokens",
                "spec.llm.maxTotalTokens must be greater than spec.llm.maxInputTokens",
            ),
            Rule(
                "!(self.model.startsWith('s3://') || self.model.startsWith('gs://'))"
                " || has(self.modelStorage.objectStore)",
                "spec.llm.model s3:// or gs:// needs spec.llm.modelStorage.objectStore",
            ),
            Rule(
                "!has(self.extraArgs) || self.extraArgs.all(a, "
                f"!a.matches({cel_string(RESERVED_FLAG_PATTERN)}))",
                "spec.llm.extraArgs may not set a flag the operator sets ("
                + ", ".join(ENGINE_FLAGS)
                + ")",
            ),
            Rule(
                "!has(self.env) || self.env.all(e, !(e.name in "
                + "["
                + ", ".join(f"'{n}'" for n in ENGINE_ENV)
                + "]))",
                "spec.llm.env may not set a variable the operator sets ("
                + ", ".join(ENGINE_ENV)
                + ")",
            ),
            Rule(
                "!self.model.startsWith('pvc://') || (has(self.modelStorage.pvc) &&"
                " self.model.startsWith('pvc://' + self.modelStorage.pvc.claimName + '/'))",
                "spec.llm.model pvc://<claimName>/<path> needs spec.llm.modelStorage.pvc."
                "claimName equal to the claim in the URI",
            ),
        )
    )

    runtime: Literal["tgi", "vllm"] = "vllm"
    """Inference server: vllm (OpenAI-compatible server, the default) or tgi (Text Generation
    Inference, in maintenance mode upstream since December 2025: bug fixes only)."""
    image: Image | None = None
    """Container image of the LLM server. Defaults to the pinned image of the chosen runtime."""
    model: str = Field(max_length=512, pattern=r"^(s3|gs|hf|pvc)://\S+$")
    """URI of the base (SFT) model: s3://bucket/path or gs://bucket/path (needs
    modelStorage.objectStore), pvc://<claimName>/<path> (needs modelStorage.pvc), or
    hf://<org>/<name> (read from the Hugging Face Hub)."""
    model_storage: ModelStorage = Field(default_factory=ModelStorage)
    """Where the weights of s3://, gs:// and pvc:// models are read from."""
    replicas: int = Field(default=1, ge=0, le=64)
    """Pods per model version."""
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    """Compute resources of the LLM server container. Keys left out get the operator's
    defaults (4 CPU, 16Gi memory, 1 nvidia.com/gpu); requests and limits are always both set."""
    max_input_tokens: int = Field(default=1024, ge=16, le=131072)
    """Longest prompt accepted, in tokens."""
    max_total_tokens: int = Field(default=2048, ge=32, le=262144)
    """Longest prompt plus generation, in tokens; must be greater than maxInputTokens."""
    lora_adapters: list[LoraAdapter] = Field(
        default_factory=list, max_length=8, json_schema_extra=list_map("name")
    )
    """LoRA adapters loaded next to the base model; names are unique."""
    decoding: Decoding = Field(default_factory=Decoding)
    """Sampling settings the gateway sends with every generation request; dpo-iterate's AEC
    gate samples its test responses with the same temperature and topP."""
    hf_token_secret_ref: SecretKeyRef | None = None
    """Secret key holding a Hugging Face token (HF_TOKEN) for gated hf:// models."""
    extra_args: list[
        Annotated[str, Field(min_length=1, max_length=512, description="One argument.")]
    ] = Field(default_factory=list, max_length=64)
    """Extra arguments of the inference server, appended to the operator's (e.g.
    [--max-lora-rank, "64", --gpu-memory-utilization, "0.85", --quantization, fp8, --dtype,
    bfloat16] for vLLM; [--quantize, awq, --dtype, bfloat16] for TGI). Flags the operator
    sets (model, host, port, token limits, tensor parallelism, LoRA modules) are refused."""
    env: list[EnvVar] = Field(
        default_factory=list, max_length=32, json_schema_extra=list_map("name")
    )
    """Extra environment variables of the inference server; names are unique and may not be
    ones the operator sets (HOME, HF_HOME, XDG_CACHE_HOME, HF_TOKEN and TGI's settings:
    MODEL_ID, PORT, HOSTNAME, MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS, MAX_BATCH_PREFILL_TOKENS,
    HUGGINGFACE_HUB_CACHE, LORA_ADAPTERS, NUM_SHARD)."""
    update_strategy: UpdateStrategy = Field(default_factory=UpdateStrategy)
    """How a changed server Deployment replaces its pods: by default one new pod is started
    and ready before an old one stops (maxSurge 1, maxUnavailable 0)."""

    @model_validator(mode="after")
    def _llm_rules(self) -> Self:
        if self.max_total_tokens <= self.max_input_tokens:
            raise ValueError(
                f"spec.llm.maxTotalTokens={self.max_total_tokens} must be greater than "
                f"spec.llm.maxInputTokens={self.max_input_tokens}"
            )
        scheme, _, rest = self.model.partition("://")
        if scheme in ("s3", "gs") and self.model_storage.object_store is None:
            raise ValueError(
                f"spec.llm.model={self.model} needs spec.llm.modelStorage.objectStore "
                "(a secretRef with the object-store credentials)"
            )
        pvc = self.model_storage.pvc
        if scheme == "pvc" and (pvc is None or not rest.startswith(pvc.claim_name + "/")):
            raise ValueError(
                f"spec.llm.model={self.model} needs spec.llm.modelStorage.pvc.claimName "
                "equal to the claim in the URI (accepted: pvc://<claimName>/<path>)"
            )
        names = [a.name for a in self.lora_adapters]
        if len(set(names)) != len(names):
            raise ValueError(f"spec.llm.loraAdapters: names {names} are not unique")
        return self._engine_rules()

    def _engine_rules(self) -> Self:
        for arg in self.extra_args:
            if re.match(RESERVED_FLAG_PATTERN, arg):
                raise ValueError(
                    f"spec.llm.extraArgs={arg!r} sets a flag the operator sets (accepted: any "
                    f"flag but {', '.join(ENGINE_FLAGS)})"
                )
        names = [e.name for e in self.env]
        for name in names:
            if name in ENGINE_ENV:
                raise ValueError(
                    f"spec.llm.env name={name} is set by the operator (accepted: any name but "
                    f"{', '.join(ENGINE_ENV)})"
                )
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"spec.llm.env: name {dup[0]} appears twice (accepted: unique names)")
        return self


class CtrPredictor(Placement):
    """The BERT-style CTR predictor, served as a KServe InferenceService."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <="
                " self.maxReplicas",
                "spec.ctrPredictor.minReplicas must not exceed spec.ctrPredictor.maxReplicas",
            ),
            Rule(
                "!has(self.minReplicas) || self.minReplicas >= 1 || (has(self.deploymentMode)"
                " && self.deploymentMode == 'Serverless')",
                "spec.ctrPredictor.minReplicas=0 needs deploymentMode Serverless",
            ),
        )
    )

    backbone: Literal["bert", "albert", "roberta"] = "albert"
    """Encoder backbone of the CTR predictor."""
    variant: Literal["base", "pid", "ctx"] = "pid"
    """Predictor variant: base (query pair only), pid (+ position id), ctx (+ queries shown
    above)."""
    image: Image | None = None
    """Container image of the predictor server. Defaults to the gqr-ctr-predictor image of the
    operator's version."""
    storage_uri: str | None = Field(
        default=None, max_length=512, pattern=r"^(s3|gs|pvc|https?)://\S+$"
    )
    """URI of the initial CTR model. After each retraining the operator serves the newly
    trained version (see status.ctr)."""
    pretrained: str | None = Field(default=None, max_length=512, pattern=r"^(s3|gs|pvc|hf)://\S+$")
    """Pretrained encoder (weights and tokenizer, e.g. hf://google-bert/bert-base-uncased) that
    ctr-train starts from instead of training one from scratch; its architecture must be the
    backbone's. Read like spec.llm.model (a gated hf:// one with spec.llm.hfTokenSecretRef)."""
    min_replicas: int = Field(default=1, ge=0, le=32)
    """Fewest predictor pods; 0 (scale to zero) only with deploymentMode Serverless."""
    max_replicas: int = Field(default=3, ge=1, le=64)
    """Most predictor pods; at least minReplicas."""
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    """Compute resources of the predictor container. Keys left out get the operator's defaults
    (1 CPU, 2Gi memory); requests and limits are always both set."""
    deployment_mode: Literal["RawDeployment", "Serverless"] = "RawDeployment"
    """KServe deployment mode (the serving.kserve.io/deploymentMode annotation)."""

    @model_validator(mode="after")
    def _replicas(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"spec.ctrPredictor.minReplicas={self.min_replicas} is greater than "
                f"spec.ctrPredictor.maxReplicas={self.max_replicas}"
            )
        if self.deployment_mode == "RawDeployment" and self.min_replicas < 1:
            raise ValueError(
                "spec.ctrPredictor.minReplicas=0 needs deploymentMode Serverless "
                "(accepted with RawDeployment: 1 or more)"
            )
        return self


class Milvus(Placement):
    """The ANN index of co-occurring queries: a managed standalone Milvus or an external one."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "!has(self.mode) || self.mode != 'external' || has(self.uri)",
                "spec.cooccurrence.milvus.uri is required when mode is external",
            ),
            Rule(
                "!has(self.uri) || (has(self.mode) && self.mode == 'external')",
                "spec.cooccurrence.milvus.uri is only accepted with mode external",
            ),
        )
    )

    mode: Literal["managed", "external"] = "managed"
    """managed (the operator runs a standalone Milvus StatefulSet) or external (use uri)."""
    uri: str | None = Field(default=None, max_length=512, pattern=r"^(https?|tcp|grpc)://\S+$")
    """URI of an external Milvus (http(s)://, tcp:// or grpc://host:port); required with mode
    external, refused with managed."""
    secret_ref: SecretKeyRef | None = None
    """Secret key holding the Milvus token (user:password or API key)."""
    storage_size: str = Field(default="20Gi", max_length=32, pattern=r"^[0-9]+(Mi|Gi|Ti)$")
    """Size of the managed Milvus volume."""
    image: Image | None = None
    """Container image of the managed Milvus. Defaults to a pinned milvusdb/milvus release."""
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    """Compute resources of the managed Milvus container. Keys left out get the operator's
    defaults (1 CPU, 4Gi memory); requests and limits are always both set."""

    @model_validator(mode="after")
    def _uri(self) -> Self:
        if self.mode == "external" and self.uri is None:
            raise ValueError("spec.cooccurrence.milvus.uri is required when mode is external")
        if self.mode == "managed" and self.uri is not None:
            raise ValueError(
                f"spec.cooccurrence.milvus.uri={self.uri} is only accepted with mode external"
            )
        return self


class Cooccurrence(Model):
    """Co-occurrence retrieval (COR): which logged successors go into the prompt."""

    milvus: Milvus = Field(default_factory=Milvus)
    """The ANN index of logged queries."""
    min_cooccurring: int = Field(default=5, ge=1, le=100000)
    """Fewest times a (query, next query) pair must be seen to be indexed."""
    neighbours: int = Field(default=10, ge=1, le=100)
    """Co-occurring queries retrieved per user query and put in its prompt (served by the
    gateway and trained on by dpo-iterate)."""
    top_m: int = Field(default=5, ge=1, le=50)
    """Co-occurring successor queries put into the prompt."""


# The gateway's built-in output filters (gqr_serving.safety.PII_KINDS; a parity test holds
# the two equal: the operator imports nothing of serving).
PiiFilter = Literal["url", "email", "phone", "card", "iban"]
PII_FILTERS: tuple[PiiFilter, ...] = ("url", "email", "phone", "card", "iban")


class OutputFilter(Model):
    """What no served query may carry, and no DPO chosen response either."""

    pii: list[
        Annotated[
            PiiFilter, Field(description="One built-in filter: url, email, phone, card, iban.")
        ]
    ] = Field(
        default_factory=lambda: list(PII_FILTERS),
        max_length=len(PII_FILTERS),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    """Built-in filters: url (http(s)://, www. and bare domains such as example.com), email,
    phone (international and grouped national numbers), card (Luhn-valid card numbers), iban
    (mod-97-valid IBANs). Default: all of them; [] turns them off."""
    blocklist_config_map_ref: ConfigMapKeyRef | None = None
    """ConfigMap key holding a blocklist (YAML or JSON: terms, whole words or phrases matched
    case-insensitively; regexes, Python regular expressions searched case-insensitively).
    Mounted read-only into the gateway pods, which refuse to start on an invalid one and
    reload it when it changes (an invalid edit keeps the previous one), and into the
    dpo-iterate Jobs."""

    @field_validator("pii")
    @classmethod
    def _unique(cls, value: list[PiiFilter]) -> list[PiiFilter]:
        if dup := sorted({p for p in value if value.count(p) > 1}):
            raise ValueError(
                f"spec.gateway.outputFilter.pii lists {dup[0]} twice "
                f"(accepted: each of {', '.join(PII_FILTERS)} at most once)"
            )
        return value


class GatewaySpool(Model):
    """A volume of its own per gateway pod for the impression spool and the log store's
    staging folder (an object-store log root stages segments there until uploaded)."""

    size: Quantity = "2Gi"
    """Capacity requested per pod. The spool takes at most half of it."""
    storage_class_name: str | None = Field(default=None, min_length=1, max_length=253)
    """StorageClass of the volume; left out: the cluster's default class."""


class Gateway(Placement):
    """The recommendation API: canary split, CTR rerank, impression/click logging."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "!has(self.signingKeySecretRef) || !has(self.signingKeySecretRef.key) || "
                "!(self.signingKeySecretRef.key in ['previous', 'next'])",
                "spec.gateway.signingKeySecretRef.key may not be previous or next (the "
                "rotation's verify-only keys)",
            ),
        )
    )

    image: Image | None = None
    """Container image of the gateway. Defaults to the gqr-gateway image of the operator's
    version."""
    replicas: int = Field(default=2, ge=1, le=64)
    """Gateway pods (a PodDisruptionBudget keeps all but one up)."""
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    """Compute resources of the gateway container. Keys left out get the operator's defaults
    (500m CPU, 1Gi memory); requests and limits are always both set."""
    rerank: bool = False
    """Rerank generated queries by predicted CTR before answering."""
    signing_key_secret_ref: SecretKeyRef | None = None
    """Secret key holding the key every gateway replica signs impression ids and hashes user
    keys with (at least 16 bytes of text). Left out: the operator creates <name>-gateway-key
    once with a random key and keeps it. Mounted into the gateway pods only, never into a
    Job. The same Secret's keys `previous` and `next`, when present, still open impression ids
    without signing: a rotation publishes the new key as `next`, then swaps it into the
    signing key with the old one as `previous`, and deletes `previous` after
    impressionTtlSeconds (replicas re-read the Secret within about a minute and a half)."""
    impression_ttl_seconds: int = Field(default=86400, ge=60, le=7776000)
    """How long after an impression its clicks are accepted; later ones are refused (410)."""
    expose_arm: bool = False
    """Tell clients which arm and model version served them. Off, a client cannot tell canary
    from stable traffic (nor aim a click farm at the canary)."""
    impression_durability: Literal["async", "ack"] = "async"
    """async: a recommendation is answered at once and its impression written in the
    background (lost if the pod's process dies first). ack: answered only once its impression
    is durable: fsync'd in the log store (a group commit shared by concurrent requests; for an
    object store, in the staging folder, uploaded later), or, when the store is late (0.5 s) or
    failing, fsync'd in the pod's spool; a 503 when neither takes it. Clicks are always
    acknowledged only once durable."""
    spool: GatewaySpool | None = None
    """Put the impression spool and the log staging folder on a volume of their own (a
    generic ephemeral volume: it survives container restarts, e.g. an OOM kill, and is
    deleted with the pod). Left out: the pod's /tmp emptyDir (also kept across container
    restarts, bounded by node ephemeral storage)."""
    output_filter: OutputFilter = Field(default_factory=OutputFilter)
    """Output safety: queries holding a URL, an e-mail address, a phone number, a card
    number, an IBAN or a blocklisted term are never served (LLM and COR queries and aux texts
    alike; counted in gqr_gateway_output_problems_total by reason) and never chosen in a DPO
    pair."""

    @model_validator(mode="after")
    def _signing_key(self) -> Self:
        ref = self.signing_key_secret_ref
        if ref is not None and ref.key in ("previous", "next"):
            raise ValueError(
                f"spec.gateway.signingKeySecretRef.key={ref.key} may not be previous or next "
                "(the rotation's verify-only keys)"
            )
        return self
