"""kopf settings for the GQR operator: where kopf keeps its own bookkeeping, and how it talks."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

GROUP = "gqr.dev"
VERSION = "v1alpha1"
PLURAL = "gqrdeployments"
KIND = "GQRDeployment"
# How often each GQRDeployment is re-checked (drift repair, pipeline and rollout progress).
TICK_SECONDS = float(os.environ.get("GQR_TICK_SECONDS", "10"))


def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Applies the operator's kopf settings (called from the startup handler)."""
    # Progress and diff-base annotations under our own group, not kopf's defaults.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    # Retry failed handlers with backoff instead of hammering the apiserver.
    settings.execution.max_workers = 20
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    # How long a silent peer counts as alive: the failover time of an HA pair.
    settings.peering.lifetime = int(os.environ.get("GQR_PEERING_LIFETIME", "60"))
