"""The operator works with nothing but the Role that gqr_operator.rbac generates: it runs as a
ServiceAccount (token from the TokenRequest API) and a sample still becomes Ready."""

from __future__ import annotations

import json
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

from gqr_operator import rbac


def _service_account_kubeconfig(kube_client: Any, testenv: Any, namespace: str, path: Path) -> None:
    core = client.CoreV1Api(kube_client)
    rbac_api = client.RbacAuthorizationV1Api(kube_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "gqr-operator"}})
    subjects = [{"kind": "ServiceAccount", "name": "gqr-operator", "namespace": namespace}]
    cluster_role = f"gqr-operator-{namespace}"
    for doc in rbac.roles(cluster_role, namespace):
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": doc["kind"], "name": cluster_role}
        binding = {"metadata": {"name": cluster_role}, "roleRef": ref, "subjects": subjects}
        if doc["kind"] == "Role":
            rbac_api.create_namespaced_role(namespace, doc)
            rbac_api.create_namespaced_role_binding(namespace, binding)
        else:
            rbac_api.create_cluster_role(doc)
            rbac_api.create_cluster_role_binding(binding)
    token = core.create_namespaced_service_account_token(
        "gqr-operator", namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    ca = str(Path(testenv.dir) / "pki" / "ca.crt")
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "t",
                        "cluster": {"server": testenv.server, "certificate-authority": ca},
                    }
                ],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "t", "context": {"cluster": "t", "user": "sa"}}],
                "current-context": "t",
            }
        )
    )


def test_operator_runs_with_only_the_generated_role(
    crds: list[str], testenv: Any, kube_client: Any, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "sa.kubeconfig"
    _service_account_kubeconfig(kube_client, testenv, namespace, kubeconfig)
    op = OperatorProcess(namespace, str(kubeconfig), tmp_path / "operator.log")
    op.start()
    try:
        api = client.CustomObjectsApi(kube_client)
        doc = sample_gqrdeployment("suggestion")
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
        name = doc["metadata"]["name"]

        def ready() -> Any:
            obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
            if conds.get("Ready", {}).get("status") == "True":
                return True
            return conds.get("Ready") or conds  # shown when it times out

        try:
            wait_for(ready, f"{name} Ready under the generated Role", timeout=90)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{op.log.read_text(errors='replace')[-4000:]}") from None
    finally:
        op.stop()
    log = op.log.read_text(errors="replace")
    assert "403" not in log and "Forbidden" not in log, log[-3000:]
