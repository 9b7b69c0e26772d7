"""spec.gateway.outputFilter reaches the gateway pods and the dpo-iterate Job alike: the same
flags (which the real gateway and dpo-iterate parsers accept), the blocklist ConfigMap
mounted read-only in both, and nothing of it in the other Jobs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.operator.cases import patched

from gqr_operator.models import parse_spec
from gqr_operator.models.serving import PII_FILTERS
from gqr_operator.resources.gateway import build_gateway_deployment
from gqr_operator.resources.jobs import STEPS, build_pipeline_job
from gqr_serving.gateway.settings import GatewaySettings
from gqr_serving.safety import PII_KINDS
from gqr_training.align.iterate import make_parser

INPUTS = {"base_model": "pvc://store/llm/stable", "ctr_uri": "pvc://store/ctr/1", "cor_uri": "x"}
REF = {"name": "safety", "key": "words.yaml"}


def _pod(manifest: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return pod


def _flag(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def _dpo(spec: Any) -> dict[str, Any]:
    return build_pipeline_job("x", "ns", spec, step="dpo-iterate", run_id="7", inputs=INPUTS)


def test_the_operator_offers_exactly_the_gateways_filters() -> None:
    assert PII_FILTERS == PII_KINDS


def test_default_is_every_filter_and_no_blocklist() -> None:
    spec = parse_spec(patched())
    for manifest in (build_gateway_deployment("x", "ns", spec), _dpo(spec)):
        pod = _pod(manifest)
        args = pod["containers"][0]["args"]
        assert _flag(args, "--pii-filters") == "url,email,phone,card,iban"
        assert "--blocklist-file" not in args
        assert not [v for v in pod["volumes"] if v["name"] == "blocklist"]


def test_blocklist_configmap_is_mounted_read_only_and_named_in_the_flags() -> None:
    spec = parse_spec(
        patched(gateway={"outputFilter": {"pii": ["url", "phone"], "blocklistConfigMapRef": REF}})
    )
    for manifest in (build_gateway_deployment("x", "ns", spec), _dpo(spec)):
        pod = _pod(manifest)
        container = pod["containers"][0]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "blocklist"]
        assert volume["configMap"] == {
            "name": "safety",
            "items": [{"key": "words.yaml", "path": "blocklist"}],
        }
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "blocklist"]
        assert mount["readOnly"] is True and "subPath" not in mount  # edits reach the pod
        args = container["args"]
        assert _flag(args, "--pii-filters") == "url,phone"
        assert _flag(args, "--blocklist-file") == f"{mount['mountPath']}/blocklist"


def test_no_pii_filter_renders_none_and_the_other_jobs_get_nothing() -> None:
    spec = parse_spec(patched(gateway={"outputFilter": {"pii": [], "blocklistConfigMapRef": REF}}))
    args = _pod(build_gateway_deployment("x", "ns", spec))["containers"][0]["args"]
    assert _flag(args, "--pii-filters") == "none"
    for step in STEPS:
        if step == "dpo-iterate":
            continue
        job = build_pipeline_job("x", "ns", spec, step=step, run_id="7", inputs=INPUTS)
        pod = _pod(job)
        assert "--pii-filters" not in pod["containers"][0]["args"]
        assert not [v for v in pod["volumes"] if v["name"] == "blocklist"]


@pytest.mark.parametrize("pii", [["url", "email"], [], list(PII_FILTERS)])
def test_rendered_flags_are_what_the_gateway_and_dpo_iterate_accept(pii: list[str]) -> None:
    spec = parse_spec(patched(gateway={"outputFilter": {"pii": pii}}))
    gw_args = _pod(build_gateway_deployment("x", "ns", spec))["containers"][0]["args"]
    value = _flag(gw_args, "--pii-filters")
    assert value is not None
    settings = GatewaySettings.from_sources(
        ["--log-root", "/tmp/x", "--llm-url", "http://h", "--pii-filters", value], env={}
    )
    assert settings.pii_filters == value
    dpo_args = _pod(_dpo(spec))["containers"][0]["args"]
    cfg = make_parser().parse_config(dpo_args)
    assert cfg.pii_filters == value and cfg.blocklist_file is None


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"pii": ["url", "fax"]}, r"gateway\.outputFilter\.pii\.1\n.*'url', 'email', 'phone'"),
        ({"pii": ["url", "url"]}, "spec.gateway.outputFilter.pii lists url twice"),
        ({"blocklistConfigMapRef": {"name": "Bad_Name"}}, r"blocklistConfigMapRef\.name\n"),
        ({"blocklist": "x"}, r"outputFilter\.blocklist\n"),
    ],
)
def test_bad_output_filter_is_refused_naming_the_field(section: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        parse_spec(patched(gateway={"outputFilter": section}))
