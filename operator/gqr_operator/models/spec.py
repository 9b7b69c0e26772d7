"""The GQRDeployment resource: its root spec model, its CRD identity, and the parse entry
point used by handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import ConfigDict, Field, model_validator

from gqr_contracts.routing import PACKAGED_DEMONSTRATIONS
from gqr_operator.models.bootstrap import Bootstrap, demonstrations_rule
from gqr_operator.models.common import Model
from gqr_operator.models.markers import CustomResource, PrinterColumn, Rule, validations
from gqr_operator.models.network import Network
from gqr_operator.models.pipeline import Artifacts, Logs, Training
from gqr_operator.models.rollout import Rollout
from gqr_operator.models.serving import Cooccurrence, CtrPredictor, Gateway, Llm, Task
from gqr_operator.models.status import GQRDeploymentStatus

GROUP = "gqr.dev"
VERSION = "v1alpha1"
KIND = "GQRDeployment"
PLURAL = "gqrdeployments"


STORE_SETTINGS = ("endpoint", "region")
"""Object-store settings of spec.logs and spec.artifacts that one pod can hold only once."""


class GQRDeploymentSpec(Model):
    """Desired state of the GQR service, its retraining pipeline and its canary rollout."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            *(
                Rule(
                    f"!has(self.logs.{key}) || !has(self.artifacts.{key}) "
                    f"|| self.logs.{key} == self.artifacts.{key}",
                    f"spec.logs.{key} and spec.artifacts.{key} must be equal when both are set "
                    "(a pod reaching both stores has one S3 endpoint and region)",
                )
                for key in STORE_SETTINGS
            ),
            Rule(
                demonstrations_rule(),
                "spec.bootstrap.fewShot.demonstrations must be at most the packaged "
                "demonstrations of spec.task.type (accepted: "
                + ", ".join(f"{t} 0-{n}" for t, n in PACKAGED_DEMONSTRATIONS.items())
                + ", other tasks 0)",
            ),
        )
    )

    task: Task
    """Which recommendation component is served; fixes the prompt template and the list
    reward."""
    llm: Llm
    """The LLM servers: one Deployment and Service per model version (stable, canary)."""
    ctr_predictor: CtrPredictor = Field(default_factory=CtrPredictor)
    """The CTR predictor (process reward model), served as a KServe InferenceService."""
    cooccurrence: Cooccurrence = Field(default_factory=Cooccurrence)
    """Co-occurrence retrieval (COR): successors of similar logged queries go into the
    prompt."""
    gateway: Gateway = Field(default_factory=Gateway)
    """The recommendation API: canary split, optional CTR rerank, impression and click
    logging."""
    logs: Logs
    """Store of impression and click records (JSON Lines segments)."""
    artifacts: Artifacts
    """Store of versioned artifacts: ctr/<version>/, llm/<version>/, cor/<version>/,
    reports/<run>.json."""
    training: Training = Field(default_factory=Training)
    """The periodic update pipeline: cor-build, ctr-train, dpo-iterate Jobs."""
    rollout: Rollout = Field(default_factory=Rollout)
    """Canary rollout of a newly trained LLM version, judged on measured CTR."""
    network: Network = Field(default_factory=Network)
    """Egress policy of the deployment's pods (ingress policies are always made)."""
    bootstrap: Bootstrap | None = None
    """Start from a base or instruct model: until the first fine-tuned model is promoted, the
    stable arm is served with few-shot prompting and every pipeline run is a bootstrap run
    (annotate -> cor-build -> ctr-train -> sft -> AEC gate -> canary). Left out: spec.llm.model
    is already fine-tuned to the prompt template and every run is the regular cycle."""

    @model_validator(mode="after")
    def _demonstrations(self) -> Self:
        b = self.bootstrap
        d = b.few_shot.demonstrations if b else None
        have = PACKAGED_DEMONSTRATIONS.get(self.task.type, 0)
        if d and d > have:
            raise ValueError(
                f"spec.bootstrap.fewShot.demonstrations={d}: task {self.task.type!r} carries "
                f"{have} packaged demonstrations (accepted: 0 to {have})"
            )
        return self

    @model_validator(mode="after")
    def _one_store_endpoint(self) -> Self:
        for key in STORE_SETTINGS:
            logs, artifacts = getattr(self.logs, key), getattr(self.artifacts, key)
            if logs and artifacts and logs != artifacts:
                raise ValueError(
                    f"spec.logs.{key}={logs!r} and spec.artifacts.{key}={artifacts!r} must be "
                    "equal when both are set (a pod reaching both stores has one S3 endpoint "
                    "and region)"
                )
        return self


# Read by gqr_operator.crdgen, which writes crds/gqr.dev_gqrdeployments.yaml (`make crd`).
RESOURCE = CustomResource(
    group=GROUP,
    version=VERSION,
    kind=KIND,
    plural=PLURAL,
    description=(
        "GQRDeployment runs a Generative Query Recommendation service (LLM servers, CTR "
        "predictor, co-occurrence index, gateway), retrains it from click logs on a schedule, "
        "and rolls each new model out as a CTR-measured canary."
    ),
    spec=GQRDeploymentSpec,
    status=GQRDeploymentStatus,
    short_names=("gqr",),
    categories=("gqr", "ml"),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase", "Summary of the state."),
        PrinterColumn("Stable", ".status.stable.version", "Stable model version."),
        PrinterColumn("Canary", ".status.canary.version", "Canary model version."),
        PrinterColumn("Weight", ".status.canary.weight", "Canary traffic percent."),
        PrinterColumn("Canary CTR", ".status.canary.ctr", "Measured canary CTR."),
        PrinterColumn("Stable CTR", ".status.stable.ctr", "Measured stable CTR."),
    ),
)


def parse_spec(spec: Mapping[str, Any]) -> GQRDeploymentSpec:
    """Validate a raw `.spec` (camelCase, as the apiserver stores it).

    Raises pydantic.ValidationError whose messages name the field, the value and what is
    accepted.
    """
    return GQRDeploymentSpec.model_validate(dict(spec))
