"""`helm lint` and `helm template` of the chart with every ci/ values file: what a user
installing it would get (args, probes, security, optional objects)."""

from __future__ import annotations

import pytest
from tests.unit.helm.helm_render import (
    CHART,
    CI_VALUES,
    KUBE_VERSION,
    by_kind,
    ci_values,
    helm,
    render,
)

SCENARIOS = ci_values()


def test_every_documented_scenario_has_a_values_file() -> None:
    assert {"default", "cluster-wide", "peering", "no-rbac", "servicemonitor"} <= set(SCENARIOS)


@pytest.mark.parametrize("values", SCENARIOS)
def test_lint_is_clean(values: str) -> None:
    out = helm("lint", str(CHART), "--strict", "-f", str(CI_VALUES / f"{values}-values.yaml"))
    assert "0 chart(s) failed" in out


def _container(docs: list[dict]) -> dict:
    (deployment,) = by_kind(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_default_runs_one_standalone_replica_on_the_release_namespace() -> None:
    docs = render("default")
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two standalone
    args = _container(docs)["args"]
    assert "--namespace=gqr-system" in args
    assert not any(a.startswith("--peering") for a in args)
    assert "--metrics-port=8000" in args
    assert "--liveness=http://0.0.0.0:8080/healthz" in args
    assert not by_kind(docs, "PodDisruptionBudget")
    assert not by_kind(docs, "KopfPeering")
    assert not by_kind(docs, "ServiceMonitor")


def test_operator_pod_is_hardened_and_probed_on_kopf_healthz() -> None:
    docs = render("default")
    (deployment,) = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8000, "healthz": 8080}
    assert container["resources"]["limits"]["memory"]
    (service,) = by_kind(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_cluster_wide_watches_all_namespaces_with_one_cluster_role() -> None:
    docs = render("cluster-wide")
    assert "--all-namespaces" in _container(docs)["args"]
    assert not any(a.startswith("--namespace") for a in _container(docs)["args"])
    assert not by_kind(docs, "Role")
    assert len(by_kind(docs, "ClusterRole")) == 1


def test_peering_runs_two_replicas_with_a_peering_object_per_watched_namespace() -> None:
    docs = render("peering")
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    args = _container(docs)["args"]
    assert "--peering=gqr-gqr-operator" in args
    assert {"--namespace=team-a", "--namespace=team-b"} <= set(args)
    peerings = by_kind(docs, "KopfPeering")
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings} == {
        ("team-a", "gqr-gqr-operator"),
        ("team-b", "gqr-gqr-operator"),
    }
    env = {e["name"] for e in _container(docs)["env"]}
    assert "POD_ID" in env  # kopf tells the peers apart by it
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1


def test_cluster_wide_peering_uses_a_cluster_kopf_peering() -> None:
    docs = render("cluster-wide", "peering.enabled=true", "replicas=2")
    assert [p["metadata"]["name"] for p in by_kind(docs, "ClusterKopfPeering")] == [
        "gqr-gqr-operator"
    ]
    assert not by_kind(docs, "KopfPeering")


def test_several_replicas_without_peering_are_refused_with_the_fix() -> None:
    out = helm(
        "template", "gqr", str(CHART), "--kube-version", "1.36.3", "--set", "replicas=2",
        check=False,
    )  # fmt: skip
    assert "replicas: 2 needs peering.enabled=true" in out


def test_unknown_values_are_refused_by_the_schema() -> None:
    out = helm("template", "gqr", str(CHART), "--set", "replica=2", check=False)
    assert "additional properties 'replica' not allowed" in out


def test_no_rbac_creates_neither_roles_nor_a_service_account() -> None:
    docs = render("no-rbac")
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert "ServiceAccount" not in kinds
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "gqr-operator-external"


def test_service_monitor_scrapes_the_metrics_service() -> None:
    docs = render("servicemonitor")
    (monitor,) = by_kind(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (service,) = by_kind(docs, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


@pytest.mark.parametrize(("keep", "annotated"), [(True, True), (False, False)])
def test_crd_keep_policy(keep: bool, annotated: bool) -> None:
    docs = render(None, f"crds.keep={str(keep).lower()}")
    (crd,) = by_kind(docs, "CustomResourceDefinition")
    annotations = crd["metadata"].get("annotations") or {}
    assert (annotations.get("helm.sh/resource-policy") == "keep") is annotated


def test_crds_install_false_leaves_the_crd_out() -> None:
    assert not by_kind(render(None, "crds.install=false"), "CustomResourceDefinition")


def test_the_operator_knows_who_may_reach_the_gateways_internal_port() -> None:
    docs = render(None, "gatewayPolicy.monitoringNamespaces={monitoring,obs}")
    (deployment,) = by_kind(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["GQR_OPERATOR_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.namespace"
    )
    assert (
        env["GQR_OPERATOR_NAME"]["value"]
        == (deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"])
    )
    assert env["GQR_MONITORING_NAMESPACES"]["value"] == "monitoring,obs"


def test_the_allowlist_reaches_the_operator_only_when_set() -> None:
    default = {e["name"] for e in _container(render(None))["env"]}
    assert "GQR_ALLOWED_SECRETS" not in default  # null: everything allowed
    narrowed = {e["name"]: e.get("value") for e in _container(render("allowlist"))["env"]}
    assert narrowed["GQR_ALLOWED_SECRETS"] == "gqr-*,shared-s3"
    assert narrowed["GQR_ALLOWED_SERVICE_ACCOUNTS"] == ""  # []: nothing allowed


def test_pod_monitor_scrapes_the_children_of_the_watched_namespaces() -> None:
    assert by_kind(render(None), "PodMonitor") == []
    (monitor,) = by_kind(
        render(None, "podMonitor.enabled=true", "watchNamespaces={team-a,team-b}"), "PodMonitor"
    )
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": "gqr"}
    assert [e["port"] for e in spec["podMetricsEndpoints"]] == ["internal", "http", "metrics"]
    (wide,) = by_kind(render(None, "podMonitor.enabled=true", "clusterWide=true"), "PodMonitor")
    assert wide["spec"]["namespaceSelector"] == {"any": True}


def _env(docs: list[dict]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in _container(docs)["env"]}


def test_child_images_default_to_the_operators_own_defaults() -> None:
    """The chart's default childImages are the operator's built-in images (the project's own at
    the chart's appVersion), so both ways of running the operator start the same children."""
    from gqr_operator.resources import defaults

    env = _env(render("default"))
    for component, image in defaults.IMAGES.items():
        assert env[defaults.image_env(component)] == image, component
    assert env[defaults.PULL_POLICY_ENV] == "IfNotPresent"
    assert env[defaults.PULL_SECRETS_ENV] == ""
    defaults.check_image_settings(env)


def test_child_image_overrides_reach_the_operators_environment() -> None:
    digest = "sha256:" + "0" * 64
    env = _env(
        render(
            "child-images",
            f"childImages.trainer.digest={digest}",
        )
    )
    assert env["GQR_IMAGE_GATEWAY"] == "registry.example:5000/team/gqr-gateway:0.2.0-rc1"
    assert env["GQR_IMAGE_TRAINER"] == f"registry.example:5000/gqr-dev/gqr-trainer@{digest}"
    assert env["GQR_IMAGE_VLLM"] == "registry.example:5000/vllm/vllm-openai:v0.31.0"
    assert env["GQR_IMAGE_PULL_POLICY"] == "Always"
    assert env["GQR_IMAGE_PULL_SECRETS"] == "mirror-cred,other-cred"
    from gqr_operator.resources import defaults

    defaults.check_image_settings(env)


@pytest.mark.parametrize(
    "bad",
    [
        "childImages.pullPolicy=Sometimes",
        "childImages.gateway.digest=latest",
        "childImages.pullSecrets={Not_A_Name}",
        "childImages.gateway.colour=blue",
    ],
)
def test_invalid_child_image_values_are_refused(bad: str) -> None:
    args = ["template", "gqr", str(CHART), "--kube-version", KUBE_VERSION, "--set", bad]
    out = helm(*args, check=False)
    assert "values don't meet the specifications of the schema" in out, out
