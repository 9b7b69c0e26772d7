"""Spec sections of what serves traffic: task, LLM servers, CTR predictor, COR, gateway."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from gqr_contracts.reward import DEFAULT_COMPONENT, Component
from gqr_contracts.routing import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from gqr_operator.models.common import (
    ConfigMapKeyRef,
    Model,
    ResourceRequirements,
    SecretKeyRef,
    SecretRef,
)
from gqr_operator.models.markers import Rule, list_map, validations

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


class Llm(Model):
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
        return self


class CtrPredictor(Model):
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
    service_account_name: DnsLabel | None = None
    """ServiceAccount of the predictor pods, e.g. one whose Secrets grant KServe's storage
    initializer access to storageUri."""

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


class Milvus(Model):
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


class Gateway(Model):
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
