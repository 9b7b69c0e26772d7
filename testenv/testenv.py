#!/usr/bin/env python3
"""Runs a real Kubernetes control plane as local processes for the tests.

``testenv.py up`` builds (or reuses) the pinned binaries, generates a CA, serving and client
certificates and service-account keys, starts etcd, kube-apiserver (RBAC, secure port on
loopback), kube-controller-manager, kube-scheduler and kwok on free loopback ports, registers a
fake kwok node, waits until everything is healthy and writes ``state.json`` + a kubeconfig.
``testenv.py down`` stops only the processes it started (by pid) and removes its state.
No Docker is needed: kwok plays the kubelet, so pods become Running and Job pods Succeeded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Popen objects of the components this process started: kept so they are not garbage-collected
# while running (ResourceWarning), and waited for in down().
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
NODE_NAME = "kwok-node-0"
SERVICE_CIDR = "10.96.0.0/16"  # room for the scale benchmark's ~400 Services
SERVICE_IP = "10.96.0.1"


@dataclass
class State:
    """What ``up`` started; ``down`` and the pytest fixture read it back."""

    dir: str
    kubeconfig: str
    server: str
    bin_dir: str
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: str | os.PathLike[str]) -> State:
        return cls(**json.loads((Path(state_dir) / "state.json").read_text()))

    def save(self) -> None:
        (Path(self.dir) / "state.json").write_text(json.dumps(asdict(self), indent=2))

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of every component's log, for a failing test to print."""
        out = []
        for name, path in self.logs.items():
            try:
                tail = Path(path).read_text(errors="replace").splitlines()[-lines:]
            except OSError as exc:
                tail = [f"<unreadable: {exc}>"]
            out.append(f"===== {name} ({path}) =====\n" + "\n".join(tail))
        return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_binaries() -> Path:
    """Runs build.sh (cached) and returns the bin directory."""
    proc = subprocess.run(
        ["bash", str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True, check=True
    )
    return Path(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- certificates


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _x509_name(cn: str, org: str | None = None) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


@dataclass
class _CA:
    """The test CA: its key and certificate, and the validity window of what it issues."""

    key: Any
    cert: Any
    not_before: dt.datetime
    not_after: dt.datetime


def _write_ca(pki: Path) -> _CA:
    """A self-signed CA valid for a week (from five minutes ago), written as ca.key/ca.crt."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=7)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_x509_name("gqr-testenv-ca"))
        .issuer_name(_x509_name("gqr-testenv-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (pki / "ca.key").write_bytes(_key_pem(ca_key))
    (pki / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return _CA(ca_key, ca_cert, now, later)


def _server_extensions(builder: Any) -> Any:
    """The apiserver's serving extensions: its in-cluster DNS names and IPs, server auth."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    sans: list[x509.GeneralName] = [
        x509.DNSName(d)
        for d in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ]
    sans += [x509.IPAddress(IPv4Address(ip)) for ip in ("127.0.0.1", SERVICE_IP)]
    return builder.add_extension(x509.SubjectAlternativeName(sans), critical=False).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
    )


def _issue(pki: Path, ca: _CA, stem: str, cn: str, org: str | None, server: bool) -> None:
    """A leaf certificate signed by the CA, written as <stem>.key/<stem>.crt."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_x509_name(cn, org))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca.not_before)
        .not_valid_after(ca.not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server:
        builder = _server_extensions(builder)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    (pki / f"{stem}.key").write_bytes(_key_pem(key))
    (pki / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_sa_keys(pki: Path) -> None:
    """The service-account token signing key pair (sa.key, sa.pub)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (pki / "sa.key").write_bytes(_key_pem(sa_key))
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _write_pki(pki: Path) -> None:
    """CA, apiserver serving cert, client certs per identity, service-account key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    ca = _write_ca(pki)
    _issue(pki, ca, "apiserver", "kube-apiserver", None, server=True)
    _issue(pki, ca, "admin", "gqr-testenv-admin", "system:masters", server=False)
    _issue(pki, ca, "controller-manager", "system:kube-controller-manager", None, server=False)
    _issue(pki, ca, "scheduler", "system:kube-scheduler", None, server=False)
    _write_sa_keys(pki)


def _kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "gqr-testenv",
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "gqr-testenv", "context": {"cluster": "gqr-testenv", "user": user}}],
        "current-context": "gqr-testenv",
    }
    path.write_text(json.dumps(doc, indent=2))  # JSON is valid YAML


# ---------------------------------------------------------------- processes


def _start(state: State, name: str, argv: list[str]) -> None:
    log = Path(state.dir) / "logs" / f"{name}.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "ab") as fh:
        # A new session: the component survives `up` returning and gets no terminal signals.
        proc = subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    state.pids[name] = proc.pid
    state.logs[name] = str(log)
    state.save()


def _ssl_context(pki: Path, client: bool) -> ssl.SSLContext:
    if not client:  # component health endpoints use self-signed serving certs
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def _get(url: str, ctx: ssl.SSLContext | None, timeout: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except (OSError, urllib.error.URLError) as exc:
        return 0, str(exc).encode()


def _wait(state: State, what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        for name, pid in state.pids.items():
            if not _alive(pid):
                raise RuntimeError(
                    f"{name} (pid {pid}) exited while waiting for {what}\n" + state.log_tails()
                )
        ok, last = check()
        if ok:
            return
        time.sleep(0.5)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what}: {last!r}\n" + state.log_tails()
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as dead
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _api(state: State, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    pki = Path(state.dir) / "pki"
    req = urllib.request.Request(
        state.server + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, context=_ssl_context(pki, client=True), timeout=10) as r:
        return json.loads(r.read())


def fake_node(name: str = NODE_NAME) -> dict[str, Any]:
    """A node that kwok manages (annotation selector), with room for many pods and GPUs."""
    capacity = {
        # Room for the scale benchmark: 100 GQRDeployments, each with GPU LLM pods.
        "cpu": "4096",
        "memory": "64Ti",
        "pods": "5000",
        "nvidia.com/gpu": "1024",
        "ephemeral-storage": "64Ti",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def up(state_dir: str | None = None, timeout: float = 180.0) -> State:
    bin_dir = build_binaries()
    root = Path(state_dir or tempfile.mkdtemp(prefix="gqr-testenv-"))
    root.mkdir(parents=True, exist_ok=True)
    pki = root / "pki"
    _write_pki(pki)
    ports = {
        n: _free_port()
        for n in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok")
    }
    server = f"https://127.0.0.1:{ports['apiserver']}"
    state = State(
        dir=str(root),
        kubeconfig=str(root / "kubeconfig"),
        server=server,
        bin_dir=str(bin_dir),
        ports=ports,
    )
    for user in ("admin", "controller-manager", "scheduler"):
        _kubeconfig(
            root / ("kubeconfig" if user == "admin" else f"{user}.kubeconfig"), server, pki, user
        )
    state.save()
    try:
        _launch(state, bin_dir, pki, root, ports, timeout)
    except BaseException:
        down(state)
        raise
    return state


def _launch(
    state: State, bin_dir: Path, pki: Path, root: Path, ports: dict[str, int], timeout: float
) -> None:
    """Starts every process in dependency order and waits until the cluster takes Pods."""
    _start_etcd(state, bin_dir, root, ports)
    _start_apiserver(state, bin_dir, pki, root, ports, timeout)
    _start_controllers(state, bin_dir, pki, root, ports)
    _start_kwok(state, bin_dir, ports)
    _wait_components_healthy(state, pki, ports, timeout)
    _api(state, "POST", "/api/v1/nodes", fake_node())
    # Stands in for a CSI provisioner: binds every PVC to a new hostPath PV.
    _start(state, "provisioner", [sys.executable, str(HERE / "provisioner.py"), str(root)])
    _wait_cluster_ready(state, timeout)


def _etcd_url(ports: dict[str, int]) -> str:
    return f"http://127.0.0.1:{ports['etcd']}"


def _start_etcd(state: State, bin_dir: Path, root: Path, ports: dict[str, int]) -> None:
    etcd_url = _etcd_url(ports)
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    _start(
        state,
        "etcd",
        [
            str(bin_dir / "etcd"),
            "--name=testenv",
            f"--data-dir={root / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=testenv={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
            "--listen-metrics-urls=",
            "--quota-backend-bytes=2147483648",
        ],
    )
    _wait(state, "etcd health", lambda: (_get(etcd_url + "/health", None)[0] == 200, None), 60)


def _start_apiserver(
    state: State, bin_dir: Path, pki: Path, root: Path, ports: dict[str, int], timeout: float
) -> None:
    _start(
        state,
        "kube-apiserver",
        [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={_etcd_url(ports)}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--cert-dir={root / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            # The requestheader (front-proxy) CA: without it every component that reads
            # extension-apiserver-authentication logs an error each second.
            f"--requestheader-client-ca-file={pki / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ],
    )
    ctx = _ssl_context(pki, client=True)

    def api_ready() -> tuple[bool, Any]:
        code, body = _get(state.server + "/readyz", ctx)
        return code == 200, body[-300:]

    _wait(state, "kube-apiserver /readyz", api_ready, timeout)


def _component_auth(root: Path, ports: dict[str, int], comp: str) -> list[str]:
    """The flags kube-controller-manager and kube-scheduler share: their kubeconfig for the
    API, authentication and authorization, their own secure port, no leader election."""
    kubeconfig = root / f"{comp}.kubeconfig"
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--secure-port={ports[comp]}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        "--v=1",
    ]


def _start_controllers(
    state: State, bin_dir: Path, pki: Path, root: Path, ports: dict[str, int]
) -> None:
    _start(
        state,
        "kube-controller-manager",
        [
            str(bin_dir / "kube-controller-manager"),
            *_component_auth(root, ports, "controller-manager"),
            "--use-service-account-credentials",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--concurrent-gc-syncs=5",
        ],
    )
    _start(
        state,
        "kube-scheduler",
        [str(bin_dir / "kube-scheduler"), *_component_auth(root, ports, "scheduler")],
    )


def _start_kwok(state: State, bin_dir: Path, ports: dict[str, int]) -> None:
    _start(
        state,
        "kwok",
        [
            str(bin_dir / "kwok"),
            f"--kubeconfig={state.kubeconfig}",
            f"--config={HERE / 'kwok-stages.yaml'}",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.1/16",
            "--node-ip=10.244.0.1",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            "--node-lease-duration-seconds=40",
        ],
    )


def _wait_components_healthy(
    state: State, pki: Path, ports: dict[str, int], timeout: float
) -> None:
    """Waits for /healthz of kube-controller-manager, kube-scheduler and kwok."""
    noverify = _ssl_context(pki, client=False)
    for comp in ("controller-manager", "scheduler"):
        url = f"https://127.0.0.1:{ports[comp]}/healthz"
        _wait(
            state,
            f"{comp} /healthz",
            lambda u=url: (_get(u, noverify)[0] == 200, _get(u, noverify)),
            timeout,
        )
    _wait(
        state,
        "kwok /healthz",
        lambda: (_get(f"http://127.0.0.1:{ports['kwok']}/healthz", None)[0] == 200, None),
        timeout,
    )


def _wait_cluster_ready(state: State, timeout: float) -> None:
    """Waits for the fake node to be Ready and the default ServiceAccount to exist."""

    def node_ready() -> tuple[bool, Any]:
        node = _api(state, "GET", f"/api/v1/nodes/{NODE_NAME}")
        conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        return conds.get("Ready") == "True", conds

    _wait(state, f"node {NODE_NAME} Ready", node_ready, timeout)

    def default_sa() -> tuple[bool, Any]:
        try:
            _api(state, "GET", "/api/v1/namespaces/default/serviceaccounts/default")
            return True, None
        except urllib.error.HTTPError as exc:
            return False, exc.code

    _wait(state, "the default ServiceAccount", default_sa, timeout)


def down(state: State) -> None:
    """Stops the processes this state started (never anything else) and removes its files."""
    order = [
        "provisioner",
        "kwok",
        "kube-scheduler",
        "kube-controller-manager",
        "kube-apiserver",
        "etcd",
    ]
    for name in sorted(state.pids, key=lambda n: order.index(n) if n in order else -1):
        pid = state.pids[name]
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(10)
    shutil.rmtree(state.dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the control plane and print the state dir")
    p_up.add_argument("--dir", help="state directory (default: a new temp dir)")
    p_up.add_argument("--timeout", type=float, default=180.0)
    p_down = sub.add_parser("down", help="stop what `up` started and remove its state")
    p_down.add_argument("--dir", required=True)
    sub.add_parser("build", help="build (or reuse) the binaries and print their directory")
    args = parser.parse_args(argv)
    if args.cmd == "build":
        print(build_binaries())
    elif args.cmd == "up":
        t0 = time.monotonic()
        state = up(args.dir, args.timeout)
        print(f"testenv up in {time.monotonic() - t0:.1f}s: {state.server}", file=sys.stderr)
        print(f"export KUBECONFIG={state.kubeconfig} GQR_TESTENV_DIR={state.dir}", file=sys.stderr)
        print(state.dir)
    else:
        down(State.load(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
