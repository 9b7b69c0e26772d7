"""Names and labels of every child, derived from the GQRDeployment name.

Names are DNS-1123 labels that start with a letter (so they are valid Service names too),
at most 63 characters: too long a name is cut and ends in a short hash of the full one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

Component = Literal["llm", "ctr-predictor", "milvus", "gateway", "pipeline", "network"]
Arm = Literal["stable", "canary"]

APP = "gqr"
MANAGED_BY = "gqr-operator"
DEPLOYMENT_LABEL = "gqr.dev/deployment"
VERSION_LABEL = "gqr.dev/model-version"
ARM_LABEL = "gqr.dev/arm"
STEP_LABEL = "gqr.dev/pipeline-step"
RUN_LABEL = "gqr.dev/run-id"
_HASH_LEN = 8
_LABEL_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"


def dns_label(text: str, max_len: int = 63) -> str:
    """Turn any text into a DNS-1123 label that starts with a letter, at most max_len long."""
    clean = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"
    if not clean[0].isalpha():
        clean = f"g-{clean}"
    if len(clean) <= max_len:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:_HASH_LEN]
    return f"{clean[: max_len - _HASH_LEN - 1].rstrip('-')}-{digest}"


def child_name(cr_name: str, *parts: str, max_len: int = 63) -> str:
    """`<cr>-<part>-...`, shortened with a hash of the full name when over max_len."""
    return dns_label("-".join((cr_name, *parts)), max_len)


def label_value(text: str) -> str:
    """A valid label value (at most 63 characters), hashed when it has to be shortened."""
    if len(text) <= 63 and re.fullmatch(_LABEL_VALUE, text):
        return text
    return dns_label(text)


def selector_labels(
    cr_name: str, component: Component, version: str | None = None
) -> dict[str, str]:
    """Labels that select a child's pods; stable for the pods' lifetime (no arm here)."""
    labels = {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/instance": label_value(cr_name),
        "app.kubernetes.io/component": component,
    }
    if version is not None:
        labels[VERSION_LABEL] = label_value(version)
    return labels


def labels(
    cr_name: str, component: Component, version: str | None = None, arm: Arm | None = None
) -> dict[str, str]:
    """All labels of a child object. The arm goes on objects, never on pod templates:
    promotion relabels a Deployment without restarting its pods."""
    out = selector_labels(cr_name, component, version)
    out["app.kubernetes.io/managed-by"] = MANAGED_BY
    out["app.kubernetes.io/part-of"] = APP
    out[DEPLOYMENT_LABEL] = label_value(cr_name)
    if arm is not None:
        out[ARM_LABEL] = arm
    return out


def metadata(
    name: str,
    namespace: str,
    child_labels: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> dict[str, object]:
    """`metadata` of a namespaced child."""
    meta: dict[str, object] = {"name": name, "namespace": namespace, "labels": dict(child_labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta
