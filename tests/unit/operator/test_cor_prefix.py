"""Each GQRDeployment has its own Milvus prefix, so deployments sharing one Milvus never switch
or prune each other's COR collections: cor-build, the gateway and the status all use it, and
the status names the collection the index really holds."""

from __future__ import annotations

import argparse
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.unit.operator.cases import patched

from gqr_operator import progress
from gqr_operator.models import parse_spec
from gqr_operator.resources.gateway import build_gateway_deployment
from gqr_operator.resources.jobs import build_pipeline_job
from gqr_operator.resources.milvus import COR_PREFIX_MAX, cor_collection, cor_prefix
from gqr_serving.cor.index import MilvusQueryIndex, check_prefix
from gqr_serving.gateway.settings import GatewaySettings
from gqr_training.cor.build import make_parser

SHARED = parse_spec(
    patched(cooccurrence={"milvus": {"mode": "external", "uri": "http://milvus.shared:19530"}})
)
NAMES = [
    ("ml", "followup"),
    ("ml", "followup-suggestions"),
    ("ml-followup", "suggestions"),  # the same letters, split elsewhere
    ("ml", "followup.suggestions"),
    ("team-a", "followup"),
    ("team-b", "followup"),
    ("9lives", "x"),
    ("n" * 63, "a" * 253),
    ("n" * 63, "a" * 252 + "b"),
]


def test_prefixes_are_valid_milvus_names_and_never_shared() -> None:
    prefixes = [cor_prefix(name, ns) for ns, name in NAMES]
    assert len(set(prefixes)) == len(prefixes)
    longest_version = "-".join(["a" * 31, "b" * 31])  # a 63-character DNS label, all escaped
    for p in prefixes:
        assert check_prefix(p) == p and p.startswith("gqr_") and len(p) <= COR_PREFIX_MAX
        assert len(cor_collection(p, longest_version)) <= 255
    assert cor_prefix("followup", "ml") == cor_prefix("followup", "ml")  # stable across passes


@pytest.mark.parametrize("version", ["7", "run-1", "v20250601T030000Z", "a.b_c-d"])
def test_the_status_names_the_collection_the_index_builds(version: str) -> None:
    prefix = cor_prefix("followup", "ml")
    index = MilvusQueryIndex("unused.db", prefix=prefix)  # no connection until used
    assert cor_collection(prefix, version) == index.collection_name(version)
    assert index.version_of(cor_collection(prefix, version)) == version


def _cor_build_args(name: str, namespace: str) -> argparse.Namespace:
    job = build_pipeline_job(name, namespace, SHARED, step="cor-build", run_id="7")
    args: argparse.Namespace = make_parser().parse_args(
        job["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    return args


def _gateway_settings(name: str, namespace: str) -> GatewaySettings:
    deployment = build_gateway_deployment(name, namespace, SHARED)
    argv = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return GatewaySettings.from_sources(argv, env={})


def test_deployments_sharing_a_milvus_use_their_own_prefix_in_jobs_and_gateways() -> None:
    deployments = [("a", "ml"), ("b", "ml"), ("a", "other")]
    for (n1, ns1), (n2, ns2) in itertools.combinations(deployments, 2):
        assert _cor_build_args(n1, ns1).milvus_uri == _cor_build_args(n2, ns2).milvus_uri
        assert _cor_build_args(n1, ns1).prefix != _cor_build_args(n2, ns2).prefix
    for name, ns in deployments:
        built = _cor_build_args(name, ns).prefix
        assert built == cor_prefix(name, ns)
        assert _gateway_settings(name, ns).milvus_prefix == built  # the gateway reads it back


class _Kube:
    def get(self, kind: Any, namespace: str, name: str) -> None:
        return None

    def list(self, kind: Any, namespace: str, selector: str) -> list[Any]:
        return []


def test_status_reports_the_collection_of_this_deployment() -> None:
    steps = [
        {"name": "cor-build", "state": "Succeeded", "result": {"version": "7"}},
        {"name": "ctr-train", "state": "Succeeded", "result": {"version": "7"}},
        {"name": "dpo-iterate", "state": "Succeeded", "result": {"version": "7"}},
    ]
    body = {
        "metadata": {"name": "followup", "namespace": "ml"},
        "status": {"pipeline": {"phase": "Succeeded", "runNumber": 7, "steps": steps}},
    }
    out = progress.advance(_Kube(), body, SHARED, datetime(2025, 3, 1, tzinfo=UTC))  # type: ignore[arg-type]
    collection = out.status["cor"]["collection"]
    prefix = cor_prefix("followup", "ml")
    assert collection == MilvusQueryIndex("unused.db", prefix=prefix).collection_name("7")
