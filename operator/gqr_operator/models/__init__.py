"""Typed model of the GQRDeployment custom resource (spec and status)."""

from gqr_operator.models.spec import (
    GROUP,
    KIND,
    PLURAL,
    RESOURCE,
    VERSION,
    GQRDeploymentSpec,
    parse_spec,
)
from gqr_operator.models.status import Condition, GQRDeploymentStatus

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "RESOURCE",
    "VERSION",
    "Condition",
    "GQRDeploymentSpec",
    "GQRDeploymentStatus",
    "parse_spec",
]
