"""The CTR predictor as a KServe InferenceService with a custom kserve.Model container."""

from __future__ import annotations

from typing import Any

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources import defaults
from gqr_operator.resources.naming import child_name, labels, metadata

MODEL_NAME = "ctr"
PORT = 8080
ISVC_LABEL = "serving.kserve.io/inferenceservice"
# Knative appends "-predictor-00001" to the name of a revision, which must stay within 63.
_MAX_NAME = 45


def ctr_name(cr_name: str) -> str:
    """Name of the InferenceService."""
    return child_name(cr_name, "ctr", max_len=_MAX_NAME)


def ctr_base_url(cr_name: str, namespace: str) -> str:
    """Base URL of the predictor (the gateway appends /v1/models/<name>:predict)."""
    return f"http://{ctr_name(cr_name)}-predictor.{namespace}.svc.cluster.local"


def build_inference_service(
    name: str, namespace: str, spec: GQRDeploymentSpec, *, storage_uri: str, version: str
) -> dict[str, Any]:
    """InferenceService serving the CTR model at storage_uri (KServe's storage initializer
    fetches it to /mnt/models through the STORAGE_URI variable)."""
    ctr = spec.ctr_predictor
    child_labels = labels(name, "ctr-predictor", version)
    container = {
        "name": "kserve-container",
        "image": defaults.image("ctr-predictor", ctr.image),
        "command": ["python", "-m", "gqr_training.ctr.server"],
        "args": [
            "--model_name",
            MODEL_NAME,
            "--model_dir",
            "/mnt/models",
            "--backbone",
            ctr.backbone,
            "--variant",
            ctr.variant,
            "--http_port",
            str(PORT),
        ],
        "ports": [{"containerPort": PORT, "protocol": "TCP"}],
        "env": [{"name": "STORAGE_URI", "value": storage_uri}, *defaults.scratch_env()],
        "resources": defaults.resources("ctr-predictor", ctr.resources),
        "securityContext": defaults.container_security_context(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "cache", "mountPath": "/cache"},
        ],
        "readinessProbe": defaults.http_probe(
            f"/v1/models/{MODEL_NAME}", PORT, period=10, failures=3
        ),
        "livenessProbe": defaults.http_probe("/", PORT, period=20, failures=3),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    volumes, _ = defaults.scratch_volumes(cache_size="2Gi")
    # KServe's predictor takes a pod spec inline, and the pods' labels and annotations.
    predictor: dict[str, Any] = {
        "minReplicas": ctr.min_replicas,
        "maxReplicas": ctr.max_replicas,
        **defaults.pod_metadata(ctr, child_labels),
        **defaults.pod_spec(
            [container], volumes, placement=ctr, selector={ISVC_LABEL: ctr_name(name)}
        ),
    }
    annotations: dict[str, str] = {"serving.kserve.io/deploymentMode": ctr.deployment_mode}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata(ctr_name(name), namespace, child_labels, annotations),
        "spec": {"predictor": predictor},
    }
