"""spec.network: where the deployment's pods may connect (egress NetworkPolicy)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from gqr_operator.models.common import Model
from gqr_operator.models.markers import Rule, validations

Cidr = Annotated[str, Field(max_length=64, description="An IP block in CIDR notation.")]
Port = Annotated[int, Field(ge=1, le=65535, description="A TCP port.")]


class EgressTarget(Model):
    """Addresses outside the cluster (an IP block) and the ports the pods may reach there."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "isCIDR(self.cidr) && (!has(self.except) || self.except.all(c, isCIDR(c)))",
                "spec.network.egress.allow[].cidr and except must be CIDR blocks "
                "(e.g. 10.0.0.0/8 or 2001:db8::/32)",
            ),
        )
    )

    cidr: str = Field(max_length=64)
    """IP block in CIDR notation, e.g. 0.0.0.0/0 or 10.20.0.0/16."""
    except_: list[Cidr] = Field(default_factory=list, max_length=16, alias="except")
    """CIDRs inside `cidr` that stay closed (e.g. the cluster's pod and node ranges)."""
    ports: list[Port] = Field(default_factory=lambda: [443], min_length=1, max_length=16)
    """TCP ports reachable in the block."""

    @model_validator(mode="after")
    def _cidrs(self) -> Self:
        for field, value in [("cidr", self.cidr), *(("except", c) for c in self.except_)]:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(
                    f"spec.network.egress.allow[].{field}={value!r} is not a CIDR block "
                    "(accepted: e.g. 10.0.0.0/8 or 2001:db8::/32)"
                ) from None
        for port in self.ports:
            if not 1 <= port <= 65535:
                raise ValueError(
                    f"spec.network.egress.allow[].ports={port} is not a port (1..65535)"
                )
        return self


class Egress(Model):
    """An egress NetworkPolicy on every pod of the deployment (off by default)."""

    restrict: bool = False
    """On: the deployment's pods (LLM servers, gateway, CTR predictor, Milvus, Jobs) may reach
    only cluster DNS, each other, and `allow` (plus the ports of spec.logs/spec.artifacts
    endpoints and of an external Milvus, opened to `allow`'s blocks). Needs a network plugin
    that enforces egress policies."""
    allow: list[EgressTarget] = Field(
        default_factory=lambda: [EgressTarget(cidr="0.0.0.0/0")], max_length=16
    )
    """Where outside the deployment the pods may connect: model hubs, object stores, a
    teacher LLM. Default: any address on port 443."""


class Network(Model):
    """Network policies of the deployment's pods beyond the built-in ingress ones."""

    egress: Egress = Field(default_factory=Egress)
    """Egress of every pod of the deployment."""
