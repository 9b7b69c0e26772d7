"""The output filter's flags and blocklist mount, the same in the gateway pods and the
dpo-iterate Jobs (``--pii-filters``, ``--blocklist-file``: gqr_serving.safety)."""

from __future__ import annotations

from gqr_operator.models.spec import GQRDeploymentSpec
from gqr_operator.resources.storage import Mounts

BLOCKLIST_DIR = "/etc/gqr-blocklist"
BLOCKLIST_FILE = "blocklist"


def output_filter_args(spec: GQRDeploymentSpec, mounts: Mounts) -> list[str]:
    """``--pii-filters`` and, with a blocklist ConfigMap, ``--blocklist-file`` (the ConfigMap
    key mounted read-only, as a directory: an edit reaches the pod, which reloads it)."""
    f = spec.gateway.output_filter
    args = ["--pii-filters", ",".join(f.pii) or "none"]
    ref = f.blocklist_config_map_ref
    if ref is not None:
        items = [{"key": ref.key, "path": BLOCKLIST_FILE}]
        mounts.add_volume(
            {"name": "blocklist", "configMap": {"name": ref.name, "items": items}},
            {"name": "blocklist", "mountPath": BLOCKLIST_DIR, "readOnly": True},
        )
        args += ["--blocklist-file", f"{BLOCKLIST_DIR}/{BLOCKLIST_FILE}"]
    return args
