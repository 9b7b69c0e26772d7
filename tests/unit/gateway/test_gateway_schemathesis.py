"""Schemathesis against the published OpenAPI spec: no input gets a 5xx, and every response
matches its documented status code, content type and schema."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import pytest
import schemathesis
from gateway_fakes import ScriptedBackend, cor_source, guarded, settings
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gqr_serving.gateway import create_app
from gqr_serving.gateway.service import GatewayParts

_TMP = Path(tempfile.mkdtemp(prefix="gqr-gw-schemathesis-"))
_REPLY = "green tea side effects <SEP> best green tea brands <SEP> green tea caffeine"
_APP = create_app(
    settings(_TMP),
    GatewayParts(
        backend_factory=lambda arm: guarded(ScriptedBackend(_REPLY)), cor_source=cor_source()
    ),
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # starlette TestClient inside
    schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.filterwarnings("ignore::DeprecationWarning:starlette.*")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:fastapi.*")
@schema.parametrize()
@hsettings(
    max_examples=50,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_responses_match_the_spec(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
