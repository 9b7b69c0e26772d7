"""spec.gateway.impressionDurability, spec.gateway.spool and spec.logs.retentionDays reach the
gateway pods as flags and a volume the real gateway accepts."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.operator.cases import patched

from gqr_operator.models import parse_spec
from gqr_operator.resources.gateway import build_gateway_deployment
from gqr_serving.gateway.settings import GatewaySettings


def _container(spec: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = build_gateway_deployment("x", "ns", spec)["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def _settings(args: list[str], env: list[dict[str, Any]]) -> GatewaySettings:
    """What the gateway makes of the rendered durability flags."""
    keep = ("--impression-durability", "--log-retention-days", "--spool-dir", "--spool-max-bytes")
    argv = ["--log-root", "/tmp/x", "--llm-url", "http://h"]
    for flag in keep:
        if flag in args:
            argv += [flag, args[args.index(flag) + 1]]
    return GatewaySettings.from_sources(argv, env={})


def test_defaults_async_no_spool_volume_and_30_days_retention() -> None:
    pod, c = _container(parse_spec(patched()))
    s = _settings(c["args"], c["env"])
    assert s.impression_durability == "async" and s.log_retention_days == 30
    assert s.spool_dir is None  # the pod's /tmp emptyDir
    assert not [v for v in pod["volumes"] if v["name"] == "spool"]
    assert "GQR_LOG_STAGING_DIR" not in {e["name"] for e in c["env"]}


def test_ack_and_a_spool_volume_per_pod() -> None:
    spec = parse_spec(
        patched(
            gateway={
                "impressionDurability": "ack",
                "spool": {"size": "4Gi", "storageClassName": "fast-ssd"},
            },
            logs={"uri": "s3://bucket/logs", "retentionDays": 7},
        )
    )
    pod, c = _container(spec)
    s = _settings(c["args"], c["env"])
    assert s.impression_durability == "ack" and s.log_retention_days == 7
    assert str(s.spool_dir) == "/var/lib/gqr/spool" and s.spool_max_bytes == 2 << 30
    (volume,) = [v for v in pod["volumes"] if v["name"] == "spool"]
    claim = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "4Gi"}},
        "storageClassName": "fast-ssd",
    }
    assert {"name": "spool", "mountPath": "/var/lib/gqr"} in c["volumeMounts"]
    assert {"name": "GQR_LOG_STAGING_DIR", "value": "/var/lib/gqr/staging"} in c["env"]


def test_spool_without_a_class_uses_the_default_class() -> None:
    pod, _ = _container(parse_spec(patched(gateway={"spool": {}})))
    (volume,) = [v for v in pod["volumes"] if v["name"] == "spool"]
    claim = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert "storageClassName" not in claim and claim["resources"]["requests"]["storage"] == "2Gi"


@pytest.mark.parametrize(
    ("gateway", "match"),
    [
        ({"impressionDurability": "sync"}, r"gateway\.impressionDurability\n.*'async' or 'ack'"),
        ({"spool": {"size": "lots"}}, r"gateway\.spool\.size\n.*not a Kubernetes quantity"),
        ({"spool": {"storageClassName": ""}}, r"gateway\.spool\.storageClassName\n"),
    ],
)
def test_bad_durability_settings_name_the_field(gateway: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        parse_spec(patched(gateway=gateway))
