"""Spec sections of what serves traffic: task, LLM servers, CTR predictor, COR, gateway."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from gqr_operator.models.common import (
    Model,
    ResourceRequirements,
    SecretKeyRef,
    SecretRef,
)

Image = Annotated[str, Field(min_length=1, max_length=512)]
DnsLabel = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]

TaskType = Literal["suggestion", "clarification", "hint", "completion"]
# Inclusive numQueries range per task type; the CRD's CEL rules say the same.
NUM_QUERIES: dict[str, tuple[int, int]] = {
    "suggestion": (1, 10),
    "clarification": (2, 16),
    "hint": (1, 1),
    "completion": (1, 10),
}


class Task(Model):
    """Which recommendation component this deployment serves."""

    type: TaskType
    num_queries: int = Field(default=3, ge=1, le=16)
    component: Literal["multiChoice", "singleChoice"] = "multiChoice"
    aux_texts: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=8
    )

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


class ObjectStore(Model):
    """Weights fetched from S3/GCS by an init container; credentials only via the Secret."""

    endpoint: str | None = Field(default=None, max_length=512, pattern=r"^https?://\S+$")
    region: str | None = Field(default=None, max_length=63)
    secret_ref: SecretRef


class ModelStorage(Model):
    """Where model weights come from: a PVC or an object store (at most one)."""

    pvc: PvcStorage | None = None
    object_store: ObjectStore | None = None
    cache_size: str = Field(default="50Gi", max_length=32, pattern=r"^[0-9]+(Mi|Gi|Ti)$")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.pvc is not None and self.object_store is not None:
            raise ValueError(
                "spec.llm.modelStorage: pvc and objectStore are both set (accepted: one of them)"
            )
        return self


class LoraAdapter(Model):
    """A LoRA adapter loaded next to the base model."""

    name: DnsLabel
    uri: str = Field(max_length=512, pattern=r"^(s3|gs|hf|pvc)://\S+$")


class Decoding(Model):
    """Sampling settings the gateway sends with every generation request; dpo-iterate's AEC
    gate samples its test responses with the same temperature and topP."""

    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    max_new_tokens: int = Field(default=128, ge=1, le=2048)
    seed_policy: Literal["perRequest", "perUser", "fixed"] = "perRequest"
    seed: int = Field(default=0, ge=0, le=2147483647)


class Llm(Model):
    """The LLM server, one Deployment per model version (stable, canary)."""

    runtime: Literal["tgi", "vllm"] = "tgi"
    image: Image | None = None
    model: str = Field(max_length=512, pattern=r"^(s3|gs|hf|pvc)://\S+$")
    model_storage: ModelStorage = Field(default_factory=ModelStorage)
    replicas: int = Field(default=1, ge=0, le=64)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    max_input_tokens: int = Field(default=1024, ge=16, le=131072)
    max_total_tokens: int = Field(default=2048, ge=32, le=262144)
    lora_adapters: list[LoraAdapter] = Field(default_factory=list, max_length=8)
    decoding: Decoding = Field(default_factory=Decoding)
    hf_token_secret_ref: SecretKeyRef | None = None

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

    backbone: Literal["bert", "albert", "roberta"] = "albert"
    variant: Literal["base", "pid", "ctx"] = "pid"
    image: Image | None = None
    storage_uri: str | None = Field(
        default=None, max_length=512, pattern=r"^(s3|gs|pvc|https?)://\S+$"
    )
    min_replicas: int = Field(default=1, ge=0, le=32)
    max_replicas: int = Field(default=3, ge=1, le=64)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    deployment_mode: Literal["RawDeployment", "Serverless"] = "RawDeployment"
    service_account_name: DnsLabel | None = None

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

    mode: Literal["managed", "external"] = "managed"
    uri: str | None = Field(default=None, max_length=512, pattern=r"^(https?|tcp|grpc)://\S+$")
    secret_ref: SecretKeyRef | None = None
    storage_size: str = Field(default="20Gi", max_length=32, pattern=r"^[0-9]+(Mi|Gi|Ti)$")
    image: Image | None = None
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)

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
    min_cooccurring: int = Field(default=5, ge=1, le=100000)
    neighbours: int = Field(default=10, ge=1, le=100)
    top_m: int = Field(default=5, ge=1, le=50)


class Gateway(Model):
    """The recommendation API: canary split, CTR rerank, impression/click logging."""

    image: Image | None = None
    replicas: int = Field(default=2, ge=1, le=64)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    rerank: bool = False
