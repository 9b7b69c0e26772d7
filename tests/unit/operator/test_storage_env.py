"""What the pods that read and write the stores get: the object store's endpoint and region, its
Secrets by reference only, the Hugging Face token where a hub model is read, and the artifact
root where the gateway looks for COR versions."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.operator.cases import patched

from gqr_operator.models import parse_spec
from gqr_operator.resources.gateway import build_gateway_deployment
from gqr_operator.resources.jobs import STEPS, build_pipeline_job

S3 = {
    "logs": {"uri": "s3://gqr/logs", "secretRef": {"name": "s3"}, "endpoint": "http://minio:9000"},
    "artifacts": {
        "uri": "s3://gqr/artifacts",
        "secretRef": {"name": "s3"},
        "endpoint": "http://minio:9000",
        "region": "eu-1",
    },
    "llm": {"model": "hf://org/base", "hfTokenSecretRef": {"name": "hf", "key": "token"}},
    "ctrPredictor": {"backbone": "bert", "pretrained": "hf://google-bert/bert-base-uncased"},
}
INPUTS = {"base_model": "hf://org/base", "ctr_uri": "s3://gqr/artifacts/ctr/1", "cor_uri": "x"}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("step", STEPS)
def test_jobs_reach_the_object_store_and_the_hub(step: str) -> None:
    spec = parse_spec(patched(**S3))
    job = build_pipeline_job("x", "ns", spec, step=step, run_id="1", inputs=INPUTS)  # type: ignore[arg-type]
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = _env(container)
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000" and env["AWS_DEFAULT_REGION"] == "eu-1"
    assert env["GQR_WORK_DIR"].startswith("/cache/") and env["GQR_MODEL_CACHE"].startswith(
        "/cache/"
    )
    assert container["envFrom"] == [{"secretRef": {"name": "s3"}}]  # once, by reference
    token = {"secretKeyRef": {"name": "hf", "key": "token"}}
    assert (env.get("HF_TOKEN") == token) == (step != "cor-build")  # hf:// model or encoder
    if step == "dpo-iterate":
        args = container["args"]
        assert args[args.index("--model") + 1] == "hf://org/base"
        assert args[args.index("--publish") + 1] == "s3://gqr/artifacts/llm"
    if step == "ctr-train":
        args = container["args"]
        assert args[args.index("--pretrained") + 1] == "hf://google-bert/bert-base-uncased"


def test_the_gateway_reads_cor_versions_from_the_artifact_root() -> None:
    spec = parse_spec(patched(**S3))
    container = build_gateway_deployment("x", "ns", spec)["spec"]["template"]["spec"]["containers"][
        0
    ]
    args = container["args"]
    assert args[args.index("--cor-root") + 1] == "s3://gqr/artifacts"  # <root>/cor/CURRENT
    assert args[args.index("--log-root") + 1] == "s3://gqr/logs"
    assert _env(container)["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert container["envFrom"] == [{"secretRef": {"name": "s3"}}]


def test_one_pod_one_endpoint() -> None:
    bad = {**S3, "logs": {**S3["logs"], "endpoint": "http://other:9000"}}
    with pytest.raises(ValidationError, match=r"spec\.logs\.endpoint='http://other:9000' and "):
        parse_spec(patched(**bad))


@pytest.mark.parametrize(
    ("ref", "secret", "key"),
    [(None, "x-gateway-key", "key"), ({"name": "mine", "key": "signing"}, "mine", "signing")],
)
def test_only_the_gateway_mounts_the_signing_key(
    ref: dict[str, str] | None, secret: str, key: str
) -> None:
    spec = parse_spec(patched(**S3, gateway={"signingKeySecretRef": ref} if ref else {}))
    pod = build_gateway_deployment("x", "ns", spec)["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "signing-key"]
    # The whole Secret: a rotation's previous/next keys reach running pods.
    assert volume["secret"] == {"secretName": secret}
    args = pod["containers"][0]["args"]
    assert args[args.index("--secret-key-file") + 1].endswith(f"/{key}")
    verify = args[args.index("--verify-key-files") + 1].split(":")
    assert [v.rsplit("/", 1)[1] for v in verify] == ["previous", "next"]
    assert args[args.index("--expose-arm") + 1] == "false"
    assert args[args.index("--impression-ttl-s") + 1] == "86400"
    for step in STEPS:
        job = build_pipeline_job("x", "ns", spec, step=step, run_id="1", inputs=INPUTS)  # type: ignore[arg-type]
        assert not [v for v in job["spec"]["template"]["spec"]["volumes"] if "secret" in v]


def test_the_made_key_is_random_text_of_32_bytes() -> None:
    import base64

    from gqr_operator.resources.gateway import build_signing_key_secret

    one, two = (build_signing_key_secret("x", "ns")["data"]["key"] for _ in range(2))
    assert one != two and len(base64.b64decode(one)) >= 43  # urlsafe text, strips cleanly
