"""Two operator replicas with kopf peering: one works, the other stands by, and takes over when
the active one is SIGKILLed (failover after the peering lifetime, 10 s here)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.kube_helpers import (
    GROUP,
    PLURAL,
    VERSION,
    OperatorProcess,
    sample_gqrdeployment,
    wait_for,
)


def _observed(api: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return bool((obj.get("status") or {}).get("observedGeneration"))


def test_standby_replica_takes_over_when_the_active_one_dies(
    crds: list[str], testenv: Any, kube_client: Any, namespace: str, tmp_path: Path
) -> None:
    custom = client.CustomObjectsApi(kube_client)
    custom.create_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings", {
            "apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
            "metadata": {"name": "gqr-operator"},
        },
    )  # fmt: skip
    env = {"GQR_PEERING_LIFETIME": "10"}
    active, standby = (
        OperatorProcess(
            namespace,
            testenv.kubeconfig,
            tmp_path / f"{role}.log",
            extra=["--peering", "gqr-operator", "--priority", str(priority)],
            env=env,
        )
        for role, priority in (("active", 200), ("standby", 100))
    )

    def peers() -> int:
        obj = custom.get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", "gqr-operator"
        )
        return len(obj.get("status") or {})

    # As in a rolling start: the active replica is up before the standby joins. (Two replicas
    # that start in the same instant may both work until they see each other: kopf's design.)
    active.start()
    try:
        wait_for(lambda: peers() >= 1, "the active replica to join the peering", timeout=90)
        standby.start()
        wait_for(lambda: peers() >= 2, "both replicas to register in the peering", timeout=90)
        first = copy.deepcopy(sample_gqrdeployment())
        first["metadata"]["name"] = "first"
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, first)
        wait_for(lambda: _observed(custom, namespace, "first"), "first observed", timeout=60)
        # kopf starts every replica paused until it has seen its peers; a standby that sees the
        # higher-priority one first stays paused without a word, so judge it by what it did.
        assert "Creation is processed" not in standby.log.read_text(errors="replace")
        wait_for(
            lambda: "Creation is processed" in active.log.read_text(errors="replace"),
            "the active replica to log its work",
            timeout=30,
        )
        active.kill()
        second = copy.deepcopy(first)
        second["metadata"]["name"] = "second"
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, second)
        wait_for(
            lambda: _observed(custom, namespace, "second"),
            "the standby replica to take over and reconcile the second object",
            timeout=90,
        )
        wait_for(
            lambda: "Creation is processed" in standby.log.read_text(errors="replace"),
            "the standby replica to log its work",
            timeout=30,
        )
    finally:
        standby.stop()
        active.stop()
