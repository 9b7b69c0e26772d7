"""Stand-in for the kubelet's volume manager: where a pod's volume mounts live on the local host.

No container runs here, so nothing is mounted. Instead every ``volumeMount`` of a container is
mapped to a local directory and the pod's paths are rewritten:

- ``persistentVolumeClaim`` -> the ``hostPath`` of the PV bound to the claim (the testenv
  provisioner binds each claim to a hostPath PV; the directory is created here, as a dynamic
  provisioner would);
- ``emptyDir`` -> a fresh directory under the pod's scratch directory;
- ``hostPath`` -> its path;
- ``configMap`` / ``secret`` -> a directory holding the keys as files (a snapshot, not updated);
- ``projected`` -> the same for its ConfigMap/Secret sources, the namespace for a downwardAPI
  ``metadata.namespace`` item, and an EMPTY service-account token file (no process here talks
  to the apiserver through in-cluster config: there is no ``KUBERNETES_SERVICE_HOST``).

Limits: ``readOnly`` is not enforced; other volume types raise :class:`VolumeError`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What may stand right before / after a path inside a string (args, env values such as
# "a=/mnt/x,b=/mnt/y" or "--flag=/mnt/x").
_BEFORE = r"(?:^|(?<=[=,:; \"']))"
_AFTER = r"(?=$|[/,:; \"'])"


class VolumeError(RuntimeError):
    """A pod's volume cannot be provided locally (unbound claim, unsupported type)."""


@dataclass
class PathMap:
    """Container path prefix -> local path. ``rewrite`` replaces whole path prefixes, the
    longest first (``/mnt/pvc/a`` wins over ``/mnt``), at path boundaries only."""

    prefixes: dict[str, str] = field(default_factory=dict)

    def add(self, container_path: str, local: str | Path) -> None:
        self.prefixes[container_path.rstrip("/") or "/"] = str(local)

    def rewrite(self, text: str) -> str:
        if not self.prefixes or "/" not in text:
            return text
        keys = sorted(self.prefixes, key=len, reverse=True)
        pattern = _BEFORE + "(" + "|".join(re.escape(k) for k in keys) + ")" + _AFTER
        return re.sub(pattern, lambda m: self.prefixes[m.group(1)], text)

    def local(self, container_path: str) -> Path:
        """The local path of one container path (unchanged when no mount covers it)."""
        return Path(self.rewrite(container_path))

    def reverse(self, text: str) -> str:
        """Local paths back to the container's (longest local path first): what a process
        inside the container would have written, e.g. an artifact path in its result."""
        if not self.prefixes or "/" not in text:
            return text
        back = {local: cpath for cpath, local in self.prefixes.items() if cpath != "/"}
        keys = sorted(back, key=len, reverse=True)
        pattern = _BEFORE + "(" + "|".join(re.escape(k) for k in keys) + ")" + _AFTER
        return re.sub(pattern, lambda m: back[m.group(1)], text)


def pvc_host_path(api_client: Any, namespace: str, claim: str) -> Path | None:
    """The hostPath directory of the PV bound to ``claim`` (created), or None while unbound."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
    if not pvc.spec.volume_name:
        return None
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    if pv.spec.host_path is None:
        raise VolumeError(f"PV {pv.metadata.name} of claim {claim} is not a hostPath volume")
    path = Path(pv.spec.host_path.path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _project(dest: Path, data: dict[str, bytes], items: list[dict[str, Any]] | None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    pairs = (
        [(i["key"], i.get("path") or i["key"]) for i in items] if items else [(k, k) for k in data]
    )
    for key, rel in pairs:
        if key in data:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[key])


def _copy_tree(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in src.rglob("*"):
        if path.is_file():
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())


def _volume_dir(api_client: Any, namespace: str, volume: dict[str, Any], scratch: Path) -> Path:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    name = volume["name"]
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]["claimName"]
        path = pvc_host_path(api_client, namespace, claim)
        if path is None:
            raise VolumeError(f"volume {name}: claim {claim} is not bound")
        return path
    if "hostPath" in volume:
        return Path(volume["hostPath"]["path"])
    local = scratch / "volumes" / name
    if "emptyDir" in volume:
        local.mkdir(parents=True, exist_ok=True)
        return local
    core = client.CoreV1Api(api_client)
    if "configMap" in volume or "secret" in volume:
        src = volume.get("configMap") or volume["secret"]
        try:
            if "configMap" in volume:
                cm = core.read_namespaced_config_map(src["name"], namespace)
                data = {k: v.encode() for k, v in (cm.data or {}).items()}
                data.update({k: base64.b64decode(v) for k, v in (cm.binary_data or {}).items()})
            else:
                secret = core.read_namespaced_secret(src["secretName"], namespace)
                data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        except ApiException as exc:
            if exc.status != 404 or not src.get("optional"):
                raise VolumeError(f"volume {name}: {exc.status} {exc.reason}") from exc
            data = {}
        _project(local, data, src.get("items"))
        return local
    if "projected" in volume:  # e.g. kube-api-access-*: files written, token left empty
        for source in volume["projected"].get("sources") or []:
            if "configMap" in source or "secret" in source:
                kind = "configMap" if "configMap" in source else "secret"
                ref = dict(source[kind])
                ref.setdefault("optional", True)
                sub = {
                    "name": name,
                    kind: ref if kind == "configMap" else {**ref, "secretName": ref["name"]},
                }
                _copy_tree(_volume_dir(api_client, namespace, sub, scratch / "projected"), local)
            elif "serviceAccountToken" in source:
                path = local / source["serviceAccountToken"]["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
            elif "downwardAPI" in source:
                for item in source["downwardAPI"].get("items") or []:
                    if (item.get("fieldRef") or {}).get("fieldPath") == "metadata.namespace":
                        (local / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                        (local / item["path"]).write_text(namespace)
        local.mkdir(parents=True, exist_ok=True)
        return local
    kinds = sorted(set(volume) - {"name"})
    raise VolumeError(f"volume {name}: type {kinds} is not supported by the local stand-in")


def pod_path_map(
    api_client: Any,
    namespace: str,
    pod_spec: dict[str, Any],
    container: dict[str, Any],
    scratch: Path,
) -> PathMap:
    """The local directory of every volumeMount of ``container`` (``subPath`` honoured).

    ``pod_spec`` and ``container`` are API dicts in camelCase (``volumeMounts``, ``mountPath``).
    """
    dirs: dict[str, Path] = {}
    for volume in pod_spec.get("volumes") or []:
        if any(m["name"] == volume["name"] for m in container.get("volumeMounts") or []):
            dirs[volume["name"]] = _volume_dir(api_client, namespace, volume, scratch)
    out = PathMap()
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in dirs:
            raise VolumeError(f"volumeMount {mount['name']}: no such volume in the pod")
        local = dirs[mount["name"]]
        if mount.get("subPath"):
            local = local / mount["subPath"]
            local.mkdir(parents=True, exist_ok=True)
        out.add(mount["mountPath"], local)
    return out
