#!/usr/bin/env python3
"""A minimal volume provisioner for the test control plane.

There is no CSI driver here, so PVCs (StatefulSet claims, a test's model/log claims) would stay
Pending and their pods unschedulable. This loop plays the part of a dynamic provisioner such as
local-path-provisioner: for every unbound claim it creates a hostPath PersistentVolume
pre-bound to it (claimRef), which the real PV controller then binds. Nothing is mounted: kwok
runs no containers. Usage: provisioner.py STATE_DIR (started and stopped by testenv.py).
"""

from __future__ import annotations

import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def main(state_dir: str) -> None:
    state = json.loads((Path(state_dir) / "state.json").read_text())
    pki = Path(state_dir) / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def call(method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(
            state["server"] + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return json.loads(resp.read())

    while True:
        try:
            claims = call("GET", "/api/v1/persistentvolumeclaims")["items"]
            for pvc in claims:
                meta, spec = pvc["metadata"], pvc["spec"]
                if spec.get("volumeName") or pvc.get("status", {}).get("phase") != "Pending":
                    continue
                pv = {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"pvc-{meta['uid']}"},
                    "spec": {
                        "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                        "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Delete",
                        "storageClassName": spec.get("storageClassName") or "",
                        "hostPath": {"path": f"/tmp/gqr-testenv-pv/{meta['uid']}"},
                        "claimRef": {
                            "namespace": meta["namespace"],
                            "name": meta["name"],
                            "uid": meta["uid"],
                        },
                    },
                }
                try:
                    call("POST", "/api/v1/persistentvolumes", pv)
                    print(
                        f"provisioned {pv['metadata']['name']} for "
                        f"{meta['namespace']}/{meta['name']}",
                        flush=True,
                    )
                except urllib.error.HTTPError as exc:
                    if exc.code != 409:
                        print(f"create PV failed: {exc.code} {exc.read()[:200]!r}", flush=True)
        except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
            print(f"poll failed: {exc}", flush=True)
        time.sleep(1.0)


if __name__ == "__main__":
    main(sys.argv[1])
