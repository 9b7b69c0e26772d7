"""The whole loop on the test control plane, from a base model, with everything that can be
real being real.

helm installs the chart (the operator Deployment becomes Available on the kwok node, though no
container runs here, so the operator itself runs as a local process against the same
apiserver); a GQRDeployment naming a base model and `spec.bootstrap` is applied; the operator
creates its children. Retrain annotations start pipeline runs: their Jobs' pods are run by a
local kubelet stand-in (tests/e2e/harness), i.e. the real `gqr annotate`, `gqr cor-build`,
`gqr ctr-train`, `gqr sft` and `gqr dpo-iterate` entrypoints on tiny models, whose result
JSON reaches the pod status as a termination message. A gate passes, the operator starts a
canary and writes the routing ConfigMap; a real gateway process (`gqr-gateway`) follows that
ConfigMap and calls the operator's LLM Services, served by TGI stand-ins running the real
models. Simulated users (the world) send requests and clicks through the gateway; the
operator's analysis reads the gateway's /v1/stats and decides.

Day 0: the base model is the demo's tiny LM (192 x 4) pretrained as a plain language model on
sessions' query lines, never on the prompt template, and the gateway serves it few-shot (the
task's three packaged demonstrations before each prompt). The first run is the bootstrap run:
`annotate` asks the teacher, a stand-in (harness/teacher.py: no real LLM can run here) that
answers each prompt's query with the world's own best list behind an OpenAI chat API and a
Bearer key from a Secret, then cor-build, ctr-train and `sft` of the base model on the
annotations; the gate compares it with the base as served. The test asserts the bootstrap's
**promotion**: the fine-tuned model measured better (lift's confidence interval above zero)
and truly better, by the world's click probabilities of the lists each arm served. Then one
regular cycle (cor-build, ctr-train, dpo-iterate) from the promoted model, whose decision must
be right: a reward model that learned from the logs (held-out AUC >= 0.65), a DPO round that
raised its estimate by the gate's margin, and a promotion with a positive measured and true
lift, or a rollback with a measured drop or with the step's limit reached without evidence
and a true lift under +20%. Routing and Events follow each decision.

The regular cycle's outcome is not asserted: whether one DPO round on a week of 6,000
impressions a day gives a truly better model varies from run to run on 2 CPU cores (the
week of logs gives predictors of AUC 0.69-0.72). Measured 2026-11-28 with an SFT stable (the
loop before the bootstrap stage): true lift +19.8%, promoted (10 min 13 s); -3.1% and -3.8%,
rolled back as inconclusive at the 8,000 horizon. The users send distinct requests of the day:
a fixed set of requests from a few users would make the step compare two fixed groups of
users, not models. The step uses the horizon test (`analysis.test: horizon`), which plans for
the step's end at MAX_IMPRESSIONS and needs |z| >= 1.96 there instead of the always-valid
mSPRT's ~2.8: at 11% CTR and 8,000 impressions per arm it promotes a true +13% in 78% of
steps and +20% in 99% (`benchmarks/bench_rollout_power.py --horizon 8000`).

Stand-ins (named in each harness module): the kubelet, TGI, cluster DNS, the ConfigMap volume
and the teacher LLM. Everything else is real: apiserver, controller-manager (Jobs), scheduler,
kwok nodes, helm, the operator, the entrypoints, milvus-lite, the gateway, the log store.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from tests.e2e.harness import (
    ConfigMapFile,
    HostsFile,
    LocalKubelet,
    LocalLLMServers,
    WorldTeacher,
    pvc_host_path,
)
from tests.kube_helpers import (
    GROUP,
    PLURAL,
    VERSION,
    OperatorProcess,
    create_claim,
    gqrdeployment,
    wait_for,
)
from tests.unit.helm.helm_render import CHART, helm
from testsupport.procs import free_port

from gqr_operator.resources.milvus import cor_prefix
from gqr_operator.rollout import counts_since

NAME = "followup"
DAYS = 7
PER_DAY = 6000  # a week of traffic: enough for the CTR predictor to learn (AUC ~0.7, not 0.5)
MIN_AUC = 0.65
BASE_TEXTS = 2000  # session texts the base model was pretrained on (plain LM, no template)
ANNOTATIONS = 2000  # logged requests the stand-in teacher annotates (the demo's SFT size)
TEACHER_KEY = "sk-e2e-teacher"  # the stand-in teacher refuses any other Bearer token
NEIGHBOURS = 10  # co-occurring queries in a prompt: served by the gateway, trained on by both
MIN_AEC_GAIN = 0.005  # the gate: the DPO round must raise the reward model's estimate this much
MAX_DROP = 0.0  # the canary must not be worse than stable
MIN_IMPRESSIONS = 1000  # per arm, before the analysis may decide
MAX_IMPRESSIONS = 8000  # per arm: the step is decided (fail on inconclusive) by then
MAX_REQUESTS = 4 * MAX_IMPRESSIONS  # a bound only: users stop as soon as the step is decided
USERS_IN_FLIGHT = 32  # concurrent users: the LLM stand-ins batch what arrives together


def _first_day() -> date:
    return datetime.now(UTC).date() - timedelta(days=DAYS - 1)


def _seed(store: Path) -> None:
    """The logs of the last days (what the base model's product served, played by the world's
    annotator) and the base model: the demo's tiny LM (192 x 4) pretrained as a plain language
    model on sessions' query lines, never on the prompt template: a base model that only knows
    the world's language. Its word-level tokenizer covers the words of rendered prompts and
    lists (a real base model's vocabulary covers any text)."""
    import torch

    from gqr_serving.prompt import load_preset
    from gqr_training.align import tinylm
    from gqr_training.align.data import sft_examples
    from gqr_training.align.sft import SFTOptions, train_sft
    from gqr_training.cli import main as gqr
    from gqr_training.demo import world_request
    from gqr_training.sim import World
    from gqr_training.sim.policies import AnnotatorPolicy

    argv = ["sim", "--policy", "annotator", "--days", str(DAYS), "--out", str(store / "logs")]
    argv += ["--impressions-per-day", str(PER_DAY), "--start-date", _first_day().isoformat()]
    argv += ["--eval-requests", "10", "--model-version", "initial", "--no-progress"]
    assert gqr(argv) == 0
    torch.manual_seed(0)
    world = World(0)
    annotator = AnnotatorPolicy(world.universe, seed=1)
    reqs = world.sample_requests(_first_day() - timedelta(days=7), BASE_TEXTS)
    vocab = sft_examples(
        load_preset("suggestion"), [world_request(r, None) for r in reqs],
        [annotator(r) for r in reqs], augment=0,
    )  # fmt: skip
    tok = tinylm.train_tokenizer(
        [r["prompt"] + "\n" + r["completion"] for r in vocab],
        tinylm.constant_lines([r["prompt"] for r in vocab]),
    )
    # Room for few-shot prompts (three demonstrations before the prompt).
    model = tinylm.build_model(tok, tinylm.TinyLMConfig(max_positions=1024))
    texts = [{"text": "\n".join([*r.history, r.query])} for r in reqs]
    opts = SFTOptions(epochs=1.0, lr=2e-3, batch_size=32, progress=False, logging_steps=100)
    model, _ = train_sft(model, tok, texts, store / ".pretrain", opts)
    tinylm.save(model, tok, store / "llm" / "base")


def _doc(stats_url: str, milvus_url: str, teacher_url: str) -> dict[str, Any]:
    return gqrdeployment(
        NAME,
        {
            "task": {"type": "suggestion", "numQueries": 3},
            "llm": {
                "runtime": "tgi",  # the harness stands in for TGI only (vLLM is the default)
                "model": "pvc://store/llm/base",
                "modelStorage": {"pvc": {"claimName": "store"}},
            },
            "bootstrap": {
                "teacher": {
                    "url": teacher_url,
                    "model": "world-oracle",
                    "apiKeySecretRef": {"name": "teacher-key"},
                },
                "annotations": ANNOTATIONS,
                "augment": 1,
                # The demo's SFT of its tiny LM: all weights, not LoRA.
                "sft": {"epochs": 2.0, "learningRate": 2e-3, "batchSize": 32, "lora": False},
                "fewShot": {"demonstrations": 3},
            },
            "logs": {"uri": "pvc://store/logs"},
            "artifacts": {"uri": "pvc://store/artifacts"},
            "cooccurrence": {
                "minCooccurring": 1,
                "neighbours": NEIGHBOURS,
                "milvus": {"mode": "external", "uri": milvus_url},
            },
            "training": {
                "podLabels": {"testenv.gqr.dev/complete": "manual"},
                "cor": {"windowDays": DAYS},
                "ctr": {"windowDays": DAYS},
                "dpo": {
                    "maxIterations": 1,
                    "beamSize": 4,
                    "candidates": 8,
                    "promptsPerIteration": 256,  # CPU time: ~0.3 s per prompt on 2 cores
                    "lora": False,
                },
                "gate": {"minAecGain": MIN_AEC_GAIN},
                "resources": {"limits": {"nvidia.com/gpu": "0", "cpu": "2", "memory": "4Gi"}},
            },
            "rollout": {
                "steps": [
                    {
                        "weight": 50,
                        "minImpressions": MIN_IMPRESSIONS,
                        "maxImpressions": MAX_IMPRESSIONS,
                    }
                ],
                "analysis": {
                    "statsUrl": stats_url,
                    "test": "horizon",  # the step ends at MAX_IMPRESSIONS: plan for it
                    "confidence": 0.9,
                    "maxRelativeDrop": MAX_DROP,
                    "onInconclusive": "fail",
                },
                "drainSeconds": 0,
            },
        },
    )


class Users:
    """Simulated users of the world, through the gateway: request, look, click."""

    def __init__(self, url: str, pool: int) -> None:
        from gqr_training.sim import World

        self.url = url
        self.world = World(0)
        self.rng = random.Random(7)
        # One sample of the day, walked in order: `sample_requests` gives the same requests for
        # the same (day, n), so asking it for each batch sent the same 200 requests (74 users)
        # over and over, and the A/B compared two fixed groups of ~37 users, not two models.
        self.pool = self.world.sample_requests(datetime.now(UTC).date(), pool)
        self.sent = 0
        self.served: list[tuple[str, str, float]] = []  # (arm, model version, true list CTR)
        self.clicks = 0
        self.errors: list[str] = []
        self.unavailable = 0

    def one(self, req: Any, http: httpx.Client) -> None:
        body = {
            "task": "suggestion",
            "query": req.query,
            "history": list(req.history)[-5:],
            "ai_answer": req.ai_response,
            "user_key": req.user_key,
            "session_id": req.session_id,
        }
        r = http.post(f"{self.url}/v1/recommend", json=body)
        if r.status_code == 503 and r.json().get("error") == "unavailable":
            self.unavailable += 1  # the tiny LLM gave nothing usable and COR knew nothing
            return
        if r.status_code != 200:
            self.errors.append(f"{r.status_code}: {r.text[:200]}")
            return
        got = r.json()
        truth = self.world.true_list_ctr(req, got["queries"]) if got["queries"] else 0.0
        self.served.append((got["arm"], got["model_version"], truth))
        clicked = self.world.show(req, got["queries"], self.rng)
        if clicked:
            fb = {
                "impression_id": got["impression_id"],
                "user_key": req.user_key,
                "session_id": req.session_id,
                "positions": clicked,
            }
            assert http.post(f"{self.url}/v1/feedback", json=fb).status_code == 200
            self.clicks += 1

    def true_ctr(self, arm: str, version: str, since: int = 0) -> tuple[float, int]:
        """Mean true CTR (the world's click probabilities) of the lists ``arm`` served with
        ``version``, from the ``since``-th response on, and how many: no click noise."""
        got = [t for a, v, t in self.served[since:] if (a, v) == (arm, version)]
        return (sum(got) / len(got) if got else 0.0), len(got)

    def send(self, n: int) -> None:
        reqs = self.pool[self.sent : self.sent + n]
        assert len(reqs) == n, f"the pool of {len(self.pool)} requests is used up"
        with httpx.Client(timeout=30) as http, ThreadPoolExecutor(USERS_IN_FLIGHT) as pool:
            list(pool.map(lambda q: self.one(q, http), reqs))
        self.sent += n


@pytest.fixture
def store(kube_client: Any, namespace: str) -> Path:
    """A claim the test provisioner binds to a hostPath PV: logs, models and artifacts."""
    create_claim(kube_client, namespace, "store", "1Gi", "ReadWriteMany")
    return wait_for(
        lambda: pvc_host_path(kube_client, namespace, "store"), "store claim bound", timeout=60
    )


@pytest.fixture
def loop(
    crds: list[str], testenv: Any, kube_client: Any, namespace: str, store: Path, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    env = {
        f"HELM_{d}_HOME": str(tmp_path / f"helm-{d.lower()}") for d in ("CACHE", "CONFIG", "DATA")
    }
    kube = ["--kubeconfig", testenv.kubeconfig, "-n", namespace]
    helm("install", "gqr", str(CHART), *kube, "--set", "crds.install=false", "--wait",
         "--timeout", "90s", env=env)  # fmt: skip
    _seed(store)
    client.CoreV1Api(kube_client).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="teacher-key"), string_data={"apiKey": TEACHER_KEY}
        ),
    )
    teacher = WorldTeacher(TEACHER_KEY)  # the stand-in teacher LLM: see harness/teacher.py
    hosts = HostsFile(tmp_path / "hosts.json")
    kubelet = LocalKubelet(kube_client, namespace, tmp_path / "kubelet", extra_env=hosts.env())
    llms = LocalLLMServers(kube_client, namespace, hosts, tmp_path / "llm", instance=NAME)
    routing = ConfigMapFile(
        kube_client, namespace, f"{NAME}-routing", "routing.json", tmp_path / "routing.json"
    )
    port, milvus_port = free_port(), free_port()
    gw_url = f"http://127.0.0.1:{port}"
    milvus_url = f"http://127.0.0.1:{milvus_port}"
    with open(tmp_path / "milvus.log", "ab") as mlog:  # the real milvus-lite as a gRPC server
        milvus = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "milvus"),
             "--host", "127.0.0.1", "--port", str(milvus_port)],
            stdout=mlog, stderr=mlog,
        )  # fmt: skip
    # A tick every 3 s, not the tests' 1 s (production: 10 s): each tick reads /v1/stats and
    # writes the rollout status, and at 1 s the operator, apiserver and etcd took ~0.5 of the
    # 2 cores the LLM stand-ins serve the users' traffic with.
    op = OperatorProcess(
        namespace, testenv.kubeconfig, tmp_path / "operator.log", env={"GQR_TICK_SECONDS": "3"}
    )
    gateway: subprocess.Popen[bytes] | None = None
    gw_log = tmp_path / "gateway.log"
    kubelet.start()
    llms.start()
    routing.start()
    op.start()
    try:
        client.CustomObjectsApi(kube_client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL,
            _doc(f"{gw_url}/v1/stats?window=1d", milvus_url, teacher.url),
        )  # fmt: skip
        routing.wait_written(timeout=120)
        gw_bin = str(Path(sys.executable).parent / "gqr-gateway")
        argv = [gw_bin, "--routing-file", str(routing.path), "--log-root", str(store / "logs"),
                "--deployment", NAME, "--cor-root", str(store / "artifacts"),
                "--milvus-uri", milvus_url, "--milvus-prefix", cor_prefix(NAME, namespace),
                "--routing-poll-s", "0.5", "--stats-refresh-s", "0.5",
                # The test's users score each arm's lists against the world's truth, so they
                # need to know the arm; a deployment keeps it from clients.
                "--expose-arm", "true",
                "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        with open(gw_log, "ab") as fh:
            gateway = subprocess.Popen(argv, env=hosts.env(dict(os.environ)), stdout=fh, stderr=fh)
        wait_for(lambda: _ok(f"{gw_url}/readyz"), "gateway ready", timeout=120)
        llms.wait_ready(timeout=180)
        yield {
            "gw": gw_url, "store": store, "kubelet": kubelet, "llms": llms, "routing": routing,
            "teacher": teacher,
        }  # fmt: skip
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(20)
        op.stop()
        milvus.terminate()
        milvus.wait(20)
        teacher.close()
        for part in (routing, llms, kubelet):
            part.stop()
        print("--- operator\n" + op.log.read_text(errors="replace")[-6000:])
        print(
            "--- gateway\n"
            + (gw_log.read_text(errors="replace")[-3000:] if gw_log.exists() else "")
        )
        print("--- kubelet\n" + str(kubelet.logs())[-6000:])
        print("--- llm servers\n" + str(llms.logs())[-3000:])


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _status(api: client.CustomObjectsApi, namespace: str, part: str) -> dict[str, Any]:
    """One part of the GQRDeployment's status (`pipeline`, `rollout`); {} while it has none."""
    obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME)
    return dict((obj.get("status") or {}).get(part) or {})


def _until_phase(
    api: client.CustomObjectsApi,
    namespace: str,
    part: str,
    phases: tuple[str, ...],
    what: str,
    timeout: float,
) -> dict[str, Any]:
    """That part of the status, once its phase is one of `phases`."""

    def reached() -> dict[str, Any] | None:
        got = _status(api, namespace, part)
        return got if got.get("phase") in phases else None

    return wait_for(reached, what, timeout=timeout)


def _retrain(
    api: client.CustomObjectsApi, namespace: str, value: str, stage: str, steps: list[str]
) -> dict[str, Any]:
    """Starts a pipeline run by the retrain annotation; its steps' results, once it
    succeeded as a run of ``stage`` with ``steps`` in order."""
    before = _status(api, namespace, "pipeline").get("runId")
    api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, NAME,
        {"metadata": {"annotations": {"gqr.dev/retrain": value}}},
    )  # fmt: skip

    def finished() -> dict[str, Any] | None:
        got = _status(api, namespace, "pipeline")
        done = got.get("phase") in ("Succeeded", "Failed", "NotPromoted")
        return got if done and got.get("runId") != before else None

    pipe = wait_for(finished, f"{stage} run finished", timeout=1500)
    assert pipe["phase"] == "Succeeded", pipe
    assert pipe["stage"] == stage, pipe
    assert [s["name"] for s in pipe["steps"]] == steps, pipe["steps"]
    for step in pipe["steps"]:
        print(f"e2e {stage} {step['name']}: {step['result'].get('metrics')}")
    found = {s["name"]: s["result"] for s in pipe["steps"]}
    cor = found["cor-build"]
    assert cor["artifactUri"].startswith("pvc://store/artifacts/cor/")
    assert cor["metrics"]["pairs"] > 0
    # The reward model learned the users' clicks from the logs (Table 2 measures how well).
    assert found["ctr-train"]["metrics"]["auc"] >= MIN_AUC
    last = found[steps[-1]]
    # The run raised the reward model's estimate by the gate's margin (else no candidate) and
    # published its model whole.
    assert last["metrics"]["aec"] >= last["metrics"]["aec_stable"] + MIN_AEC_GAIN, last["metrics"]
    assert last["artifactUri"] == f"pvc://store/artifacts/llm/{pipe['runId']}"
    return found


def _canary(
    loop: dict[str, Any], api: client.CustomObjectsApi, namespace: str, users: Users
) -> tuple[dict[str, Any], int]:
    """Users' traffic through the gateway while the canary runs, until the operator decided:
    the rollout status and the index of the first response of the canary."""
    _until_phase(api, namespace, "rollout", ("Progressing",), "canary progressing", 300)
    loop["llms"].wait_ready(timeout=180)
    canary_from, sent_from, unavailable_from = len(users.served), users.sent, users.unavailable
    while users.sent - sent_from < MAX_REQUESTS:
        users.send(200)
        phase = _status(api, namespace, "rollout").get("phase")
        if phase in ("Promoted", "RolledBack", "Promoting", "RollingBack"):
            break
    last_seen = _status(api, namespace, "rollout").get("lastAnalysis")
    print(f"e2e: {users.sent - sent_from} requests sent; last analysis: {last_seen}")
    ro = _until_phase(
        api, namespace, "rollout", ("Promoted", "RolledBack", "Failed"), "rollout decided", 120
    )
    sent, unavailable = users.sent - sent_from, users.unavailable - unavailable_from
    print(
        f"e2e: {sent} requests ({unavailable} without a list); rollout {ro['phase']} "
        f"({(ro.get('lastAnalysis') or {}).get('decision')}): {ro.get('message')}"
    )
    assert not users.errors, users.errors[:3]
    assert unavailable < 0.1 * sent, f"{unavailable} of {sent} requests got no list"
    return ro, canary_from


def _step_ctrs(gw: str, ro: dict[str, Any], candidate: str, stable: str) -> tuple[float, float]:
    """The canary's and the stable's CTR over the step, from the gateway's counts (what the
    operator's analysis asks for)."""
    since = counts_since(ro)
    assert since is not None
    step = httpx.get(f"{gw}/v1/stats", params={"window": "1d", "since": since.isoformat()}).json()
    rows = {(r["arm"], r["model_version"]): r for r in step["arms"]}
    none = {"impressions": 0, "clicked_impressions": 0}
    c, s = rows.get(("canary", candidate), none), rows.get(("stable", stable), none)
    n_c, n_s = c["impressions"], s["impressions"]
    assert n_c > 0 and n_s > 0
    step_c, step_s = c["clicked_impressions"] / n_c, s["clicked_impressions"] / n_s
    lift = f"{step_c / step_s - 1:+.1%}" if step_s else "n/a"
    print(f"e2e step: stable CTR {step_s:.4f} ({n_s} imp), canary {step_c:.4f} ({n_c} imp), "
          f"measured lift {lift}")  # fmt: skip
    return step_c, step_s


def _check_decision(
    loop: dict[str, Any], kube_client: Any, namespace: str, users: Users,
    ro: dict[str, Any], canary_from: int, candidate: str, stable: str,
) -> str:  # fmt: skip
    """Asserts the canary's decision is right, by the gateway's counts and by the truth; the
    version stable serves afterwards."""
    step_c, step_s = _step_ctrs(loop["gw"], ro, candidate, stable)
    (true_c, m_c), (true_s, m_s) = (
        users.true_ctr("canary", candidate, canary_from),
        users.true_ctr("stable", stable, canary_from),
    )
    lift = f"{true_c / true_s - 1:+.1%}" if true_s else "n/a"
    print(
        "e2e true CTR of the lists served during the canary (the world's probabilities): "
        f"stable {true_s:.4f} ({m_s}), canary {true_c:.4f} ({m_c}), true lift {lift}"
    )
    events = client.CoreV1Api(kube_client).list_namespaced_event(namespace).items
    reasons = {e.reason for e in events if e.involved_object.name == NAME}
    assert {"PipelineRunStarted", "CandidateReady", "RolloutStarted", "CanaryStepStarted"} <= (
        reasons
    )
    # A promotion: the candidate measured better (its confidence interval excludes no lift)
    # and is truly better on the traffic it served. A rollback: it measured worse, or the
    # step reached its limit on both arms without evidence (then its true lift was not large:
    # a true +20% is promoted in 99% of such steps).
    if ro["phase"] == "Promoted":
        assert ro["lastAnalysis"]["decision"] == "pass", ro["lastAnalysis"]
        assert ro["lastAnalysis"]["liftLower"] > 0
        assert step_c > step_s
        assert true_c > true_s  # a right promotion
        assert ro["stable"]["version"] == candidate
        assert {"CanaryStepPassed", "CanaryPromoting", "CanaryPromoted"} <= reasons
        now = candidate
    else:
        assert ro["phase"] == "RolledBack", ro
        last = ro["lastAnalysis"]
        if last["decision"] == "inconclusive":
            assert min(last["canary"]["impressions"], last["stable"]["impressions"]) >= (
                MAX_IMPRESSIONS
            )
            assert last["pValue"] > 1 - 0.9
            assert "CanaryStepInconclusive" in reasons
            assert true_c < 1.2 * true_s  # a true +20% is promoted in 99% of such steps
        else:
            assert last["decision"] == "fail", last
            assert step_c < step_s  # rolled back because the canary measured worse
        assert ro["stable"]["version"] == stable
        assert {"CanaryRollingBack", "CanaryRolledBack"} <= reasons
        now = stable
    wait_for(
        lambda: _arms(loop) == [("stable", now, 100, None)],
        f"routing serves {now} alone, without demonstrations",
        timeout=60,
    )
    return now


def _arms(loop: dict[str, Any]) -> list[tuple[str, str, int, int | None]]:
    """The routing file's arms: (name, model version, weight, few-shot demonstrations)."""
    arms = json.loads(loop["routing"].path.read_text())["arms"]
    return [(a["name"], a["model_version"], a["weight"], a.get("few_shot")) for a in arms]


@pytest.mark.timeout(3300)  # ~20 min alone; room for a slower or busier machine
def test_bootstrap_then_regular_cycle(
    loop: dict[str, Any], kube_client: Any, namespace: str
) -> None:
    started = time.monotonic()
    api = client.CustomObjectsApi(kube_client)
    users = Users(loop["gw"], pool=100 + 2 * MAX_REQUESTS)
    # Day 0: the base model serves few-shot (the task's packaged demonstrations before each
    # prompt) through the gateway before any training. No COR exists yet, so a request whose
    # output is unusable gets a 503: a base model's few-shot lists often are.
    assert _arms(loop) == [("stable", "initial", 100, 3)]
    users.send(100)
    assert not users.errors, users.errors[:3]
    day0, n0 = users.true_ctr("stable", "initial")
    print(f"e2e day 0 (few-shot base): {users.unavailable} of 100 requests without a list; "
          f"true CTR {day0:.4f} of {n0} lists")  # fmt: skip

    # The bootstrap run: the stand-in teacher's annotations, SFT of the base model, the gate
    # against the base as served (few-shot), then the canary, which must promote: SFT on the
    # teacher's (the world's best) lists is a large true lift over a few-shot tiny base.
    boot = _retrain(
        api, namespace, "e2e-bootstrap", "bootstrap", ["annotate", "cor-build", "ctr-train", "sft"]
    )
    teacher: WorldTeacher = loop["teacher"]
    assert boot["annotate"]["metrics"]["usable"] >= ANNOTATIONS // 2, boot["annotate"]["metrics"]
    assert teacher.asked >= boot["annotate"]["metrics"]["usable"] and teacher.refused == 0
    sft = boot["sft"]["version"]
    ro, canary_from = _canary(loop, api, namespace, users)
    assert ro["phase"] == "Promoted", ro  # the bootstrap's product is truly better
    assert _check_decision(loop, kube_client, namespace, users, ro, canary_from, sft,
                           "initial") == sft  # fmt: skip
    print(f"e2e: bootstrap promoted after {time.monotonic() - started:.0f} s")

    # One regular cycle from the promoted model: its decision, promote or roll back, must
    # agree with the truth.
    regular = _retrain(
        api, namespace, "e2e-regular", "regular", ["cor-build", "ctr-train", "dpo-iterate"]
    )
    ro, canary_from = _canary(loop, api, namespace, users)
    _check_decision(loop, kube_client, namespace, users, ro, canary_from,
                    regular["dpo-iterate"]["version"], sft)  # fmt: skip
    print(f"e2e: bootstrap + regular cycle took {time.monotonic() - started:.0f} s")
