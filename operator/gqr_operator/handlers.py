"""kopf handlers: thin. Each parses what kopf hands over, calls one function, patches status."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import kopf

from gqr_operator import metrics, reconcile
from gqr_operator import settings as opsettings
from gqr_operator.kube import Kube
from gqr_operator.resources import defaults

RESOURCE = (opsettings.GROUP, opsettings.VERSION, opsettings.PLURAL)
# One pass at a time per object: change handlers and the timer must not interleave writes.
_LOCKS: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    opsettings.configure(settings)
    defaults.check_image_settings()  # a misconfigured chart stops the operator, named
    memo["kube"] = Kube.from_environment()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account first, else $KUBECONFIG read at login time (not import time)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """An RFC 7386 merge patch turning `old` into `new` for the keys of `new`: keys dropped
    inside a section become None (deleted), unchanged keys are left out."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if value == before:
            continue
        if isinstance(value, dict) and isinstance(before, dict):
            inner = merge_patch(before, value)
            inner.update({k: None for k in before if k not in value})
            out[key] = inner
        else:
            out[key] = value
    return out


def _run(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, trigger: str) -> None:
    kube: Kube = memo["kube"]
    before = kube.thread_requests
    started = time.monotonic()
    with _LOCKS[str(body.metadata.uid)]:
        try:
            outcome = reconcile.reconcile(kube, dict(body))
        except Exception:
            metrics.RECONCILE_ERRORS.labels(reason="exception").inc()
            raise
    metrics.RECONCILES.labels(trigger=trigger).inc()
    metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
    metrics.API_REQUESTS.inc(kube.thread_requests - before)
    if outcome.sync is not None:
        for action in ("created", "updated", "pruned"):
            metrics.CHILD_WRITES.labels(action=action).inc(len(getattr(outcome.sync, action)))
    current: dict[str, Any] = dict(body.status or {})
    for key, value in merge_patch(current, outcome.status).items():
        patch.status[key] = value
    metrics.observe(
        body.metadata.namespace or "", body.metadata.name or "", {**current, **outcome.status}
    )
    for type_, reason, message in outcome.events:
        kopf.event(body, type=type_, reason=reason, message=message)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
def on_change(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """A new or changed spec: reconcile now."""
    _run(body, patch, memo, "change")


@kopf.on.delete(*RESOURCE, optional=True)
def on_delete(body: kopf.Body, **_: Any) -> None:
    """Drop the deleted GQRDeployment's metrics (children go by owner references)."""
    metrics.forget(body.metadata.namespace or "", body.metadata.name or "")


@kopf.timer(*RESOURCE, interval=opsettings.TICK_SECONDS, initial_delay=opsettings.TICK_SECONDS)
def on_tick(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Periodic pass: repairs drift (children edited or deleted by hand)."""
    _run(body, patch, memo, "timer")
