"""The root GQRDeployment spec model and the parse entry point used by handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from gqr_operator.models.common import Model
from gqr_operator.models.pipeline import Artifacts, Logs, Training
from gqr_operator.models.rollout import Rollout
from gqr_operator.models.serving import Cooccurrence, CtrPredictor, Gateway, Llm, Task

GROUP = "gqr.dev"
VERSION = "v1alpha1"
KIND = "GQRDeployment"
PLURAL = "gqrdeployments"


class GQRDeploymentSpec(Model):
    """`.spec` of a GQRDeployment; mirrors crds/gqr.dev_gqrdeployments.yaml field by field."""

    task: Task
    llm: Llm
    ctr_predictor: CtrPredictor = Field(default_factory=CtrPredictor)
    cooccurrence: Cooccurrence = Field(default_factory=Cooccurrence)
    gateway: Gateway = Field(default_factory=Gateway)
    logs: Logs
    artifacts: Artifacts
    training: Training = Field(default_factory=Training)
    rollout: Rollout = Field(default_factory=Rollout)


def parse_spec(spec: Mapping[str, Any]) -> GQRDeploymentSpec:
    """Validate a raw `.spec` (camelCase, as the apiserver stores it).

    Raises pydantic.ValidationError whose messages name the field, the value and what is
    accepted.
    """
    return GQRDeploymentSpec.model_validate(dict(spec))
