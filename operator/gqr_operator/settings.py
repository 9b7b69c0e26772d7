"""kopf settings for the GQR operator: where kopf keeps its own bookkeeping, and how it talks."""

from __future__ import annotations

import logging
from typing import Any

import kopf

GROUP = "gqr.dev"
VERSION = "v1alpha1"
PLURAL = "gqrdeployments"
KIND = "GQRDeployment"


def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
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
