"""Shared building blocks of the GQRDeployment spec: base config, Secret refs, resources."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# The apiserver's own quantity grammar (k8s.io/apimachinery resource.Quantity).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
OBJECT_URI_PATTERN = r"^(s3|gs|pvc|file)://\S+$"
MAX_NODES = 64
"""Most machines (pods) one multi-node training step may ask for (its `nodes`)."""


class Model(BaseModel):
    """Base of every spec section: camelCase aliases, unknown fields refused, immutable.

    The docstring under each field is its description in the CRD (gqr_operator.crdgen), the
    class docstring that of an array item.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


def _quantity(value: str | int) -> str | int:
    if isinstance(value, bool) or not re.match(QUANTITY_PATTERN, str(value)):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (accepted: e.g. 500m, 2, 16Gi)")
    return value


# The pattern is for the CRD: the apiserver applies it to strings only, as the validator does.
Quantity = Annotated[
    str | int,
    AfterValidator(_quantity),
    Field(json_schema_extra={"pattern": QUANTITY_PATTERN}),
]


class ResourceRequirements(Model):
    """Container requests and limits; the builders fill what is left out."""

    requests: dict[str, Quantity] | None = Field(default=None, max_length=16)
    """Minimum resources, by resource name (cpu, memory, nvidia.com/gpu, ...), as Kubernetes
    quantities."""
    limits: dict[str, Quantity] | None = Field(default=None, max_length=16)
    """Maximum resources, by resource name, as Kubernetes quantities. For GPUs the request
    equals the limit."""


class SecretRef(Model):
    """A Secret in the same namespace whose keys become environment variables (envFrom)."""

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    """Name of a Secret in this namespace."""


class SecretKeyRef(Model):
    """One key of a Secret in the same namespace (valueFrom.secretKeyRef)."""

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    """Name of a Secret in this namespace."""
    key: str = Field(default="token", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)
    """Key in the Secret."""


class ConfigMapKeyRef(Model):
    """One key of a ConfigMap in the same namespace, mounted as a file."""

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    """Name of a ConfigMap in this namespace."""
    key: str = Field(
        default="blocklist.yaml", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN
    )
    """Key in the ConfigMap."""


class Toleration(Model):
    """One toleration, as in core/v1 Toleration."""

    key: str | None = Field(default=None, max_length=253)
    """Taint key the toleration applies to; empty with operator Exists matches all."""
    operator: Literal["Exists", "Equal"] = "Equal"
    """Exists or Equal."""
    value: str | None = Field(default=None, max_length=63)
    """Taint value matched with operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect matched; empty matches all."""
    toleration_seconds: int | None = Field(default=None, ge=0, le=31536000)
    """How long a NoExecute taint is tolerated."""
