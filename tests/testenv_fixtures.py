"""pytest fixtures for the real control plane (testenv/testenv.py).

The session fixture starts the control plane once, or reuses one already up when
``GQR_TESTENV_DIR`` points at a live state dir (``make testenv-up`` prints it). When a test that
used it fails, the components' log tails are attached to the report.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[1]


def _load_testenv() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gqr_testenv", _ROOT / "testenv" / "testenv.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gqr_testenv"] = module
    spec.loader.exec_module(module)
    return module


testenv_mod = _load_testenv()
_STATE: Any = None


@pytest.fixture(scope="session")
def testenv() -> Iterator[Any]:
    """The running control plane's State (server URL, kubeconfig path, bin dir, logs)."""
    global _STATE
    reuse = os.environ.get("GQR_TESTENV_DIR")
    if reuse and (Path(reuse) / "state.json").exists():
        state = testenv_mod.State.load(reuse)
        if all(testenv_mod._alive(pid) for pid in state.pids.values()):
            _STATE = state
            yield state
            return
    state = testenv_mod.up()
    _STATE = state
    try:
        yield state
    finally:
        testenv_mod.down(state)


@pytest.fixture(scope="session")
def kube_client(testenv: Any) -> Iterator[Any]:
    """A kubernetes.client.ApiClient authenticated as the testenv admin."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=testenv.kubeconfig, client_configuration=cfg)
    api = client.ApiClient(cfg)
    yield api
    api.close()


@pytest.fixture
def namespace(kube_client: Any) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _STATE is not None and "testenv" in getattr(item, "fixturenames", ()):
        report.sections.append(("testenv component logs", _STATE.log_tails()))


def install_crds(kube_client: Any) -> list[str]:
    """Installs every CRD in crds/, kopf's peering CRDs from the chart, the engines' own CRDs
    vendored in testenv/crds/ (JobSet) and the test stand-ins in tests/fixtures/crds/ (create or
    replace), and waits until each is Established."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from tests.kube_helpers import ROOT, load_yaml, wait_for

    ext = client.ApiextensionsV1Api(kube_client)
    names = []
    paths = sorted((ROOT / "crds").glob("*.yaml"))
    # kopf's own peering CRDs ship with the chart (Helm must install them before its objects).
    paths += sorted((ROOT / "charts" / "gqr-operator" / "crds").glob("*.yaml"))
    paths += sorted((ROOT / "testenv" / "crds").glob("*/*.yaml"))
    paths += sorted((ROOT / "tests" / "fixtures" / "crds").glob("*.yaml"))
    for path in paths:
        for doc in load_yaml(path):
            name = doc["metadata"]["name"]
            try:
                ext.create_custom_resource_definition(doc)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                current = ext.read_custom_resource_definition(name)
                doc["metadata"]["resourceVersion"] = current.metadata.resource_version
                ext.replace_custom_resource_definition(name, doc)
            names.append(name)

    def established(name: str) -> bool:
        crd = ext.read_custom_resource_definition(name)
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    for name in names:
        wait_for(lambda n=name: established(n), f"CRD {name} Established", timeout=30)
    return names


@pytest.fixture(scope="session")
def crds(kube_client: Any) -> list[str]:
    """The project's CRDs, installed once per session (see install_crds)."""
    return install_crds(kube_client)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real S3 server (MinIO from testenv/build.sh) for the session: ``s3.env()`` is what a
    pod gets from the store's Secret, ``s3.bucket()`` a fresh bucket."""
    from testsupport.s3 import s3_server

    with s3_server(tmp_path_factory.mktemp("minio")) as server:
        yield server
