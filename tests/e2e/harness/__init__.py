"""Stand-ins for what the test control plane lacks (kubelet + container runtime, GPU LLM
servers, cluster DNS, ConfigMap volumes, JobSet's controller), so an end-to-end test can run
the real operator, gateway and training entrypoints as local processes against the real
apiserver.

Typical wiring (see each module's docstring for what it stands in for and its limits)::

    hosts = HostsFile(tmp / "hosts.json")
    kubelet = LocalKubelet(api, ns, tmp / "kubelet", extra_env=hosts.env()).start()
    llms = LocalLLMServers(api, ns, hosts, tmp / "llm", instance="followup").start()
    routing = ConfigMapFile(api, ns, "followup-routing", "routing.json", tmp / "routing.json")
    gateway = subprocess.Popen([..., "--routing-file", str(routing.path)],
                               env=hosts.env(os.environ))
"""

from tests.e2e.harness.cluster_dns import (
    HostsFile,
    LoopbackAllocator,
    resolver_installed,
    service_names,
)
from tests.e2e.harness.configmap_file import ConfigMapFile
from tests.e2e.harness.jobset import LocalJobSetController
from tests.e2e.harness.kubelet import LocalKubelet, PodRun
from tests.e2e.harness.llm_servers import LLMServer, LocalLLMServers, start_tgi_standin
from tests.e2e.harness.teacher import WorldTeacher
from tests.e2e.harness.volumes import PathMap, VolumeError, pod_path_map, pvc_host_path

__all__ = [
    "ConfigMapFile",
    "HostsFile",
    "LLMServer",
    "LocalJobSetController",
    "LocalKubelet",
    "LocalLLMServers",
    "LoopbackAllocator",
    "PathMap",
    "PodRun",
    "VolumeError",
    "WorldTeacher",
    "pod_path_map",
    "pvc_host_path",
    "resolver_installed",
    "service_names",
    "start_tgi_standin",
]
