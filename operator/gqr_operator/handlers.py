"""kopf handlers: thin. Each parses what kopf hands over, calls one function, patches status."""

from __future__ import annotations

from typing import Any

import kopf

from gqr_operator import conditions, settings

kopf.on.startup()(settings.configure)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account first, else $KUBECONFIG read at login time (not import time)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.resume(settings.GROUP, settings.VERSION, settings.PLURAL)
@kopf.on.create(settings.GROUP, settings.VERSION, settings.PLURAL)
@kopf.on.update(settings.GROUP, settings.VERSION, settings.PLURAL)
def reconcile(
    meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, logger: kopf.Logger, **_: Any
) -> None:
    """Marks the spec as observed. The children arrive with the operator issue."""
    generation = int(meta.get("generation", 0))
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = conditions.merge(
        status.get("conditions"),
        conditions.condition(
            "Ready", "True", "Reconciled", f"generation {generation} observed", generation
        ),
    )
    logger.info("reconciled generation %s", generation)
