"""The operator's allowlist of the Secrets and ServiceAccounts a GQRDeployment may use."""

from __future__ import annotations

from tests.unit.operator.cases import patched

from gqr_operator.allowlist import Allowlist, references
from gqr_operator.models.spec import parse_spec

SPEC = parse_spec(
    patched(
        llm={"model": "hf://a/b", "hfTokenSecretRef": {"name": "team-b-hf", "key": "token"}},
        logs={"uri": "s3://logs/x", "secretRef": {"name": "gqr-logs-s3"}},
        ctrPredictor={"serviceAccountName": "kserve-reader"},
        gateway={"signingKeySecretRef": {"name": "gqr-signing", "key": "key"}},
    )
)


def test_every_reference_of_the_spec_is_found_with_its_field() -> None:
    found = set(references(SPEC))
    assert {
        ("spec.llm.hfTokenSecretRef.name", "Secret", "team-b-hf"),
        ("spec.logs.secretRef.name", "Secret", "gqr-logs-s3"),
        ("spec.ctrPredictor.serviceAccountName", "ServiceAccount", "kserve-reader"),
        ("spec.gateway.signingKeySecretRef.name", "Secret", "gqr-signing"),
    } <= found


def test_unset_allows_everything_and_patterns_narrow_it() -> None:
    assert Allowlist.from_env({}).violations(SPEC) == []
    narrowed = Allowlist.from_env(
        {"GQR_ALLOWED_SECRETS": "gqr-*", "GQR_ALLOWED_SERVICE_ACCOUNTS": "kserve-*"}
    )
    (only,) = narrowed.violations(SPEC)
    assert only.startswith("spec.llm.hfTokenSecretRef.name='team-b-hf': Secret not allowed")
    assert "GQR_ALLOWED_SECRETS: gqr-*" in only


def test_an_empty_allowlist_allows_nothing() -> None:
    refused = Allowlist.from_env({"GQR_ALLOWED_SECRETS": "", "GQR_ALLOWED_SERVICE_ACCOUNTS": ""})
    messages = refused.violations(SPEC)
    assert len(messages) == 4 and all("(GQR_ALLOWED_" in m and ": none)" in m for m in messages)
