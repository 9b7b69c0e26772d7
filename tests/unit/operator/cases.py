"""Shared spec cases: the samples, a minimal valid spec, and invalid specs with the field each
must name (the model refuses them in unit tests, the real apiserver in integration tests)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Spec = dict[str, Any]
ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted((ROOT / "crds" / "samples").glob("*.yaml"))


def load_sample(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return dict(yaml.safe_load(f))


MINIMAL: Spec = {
    "task": {"type": "suggestion"},
    "llm": {"model": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
    "logs": {"uri": "s3://logs/x"},
    "artifacts": {"uri": "s3://artifacts/x"},
}


def patched(**sections: Any) -> Spec:
    """MINIMAL with top-level sections merged one level deep."""
    spec = copy.deepcopy(MINIMAL)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


def _without(key: str) -> Spec:
    spec = copy.deepcopy(MINIMAL)
    del spec[key]
    return spec


def _steps(*weights: int) -> dict[str, Any]:
    return {"steps": [{"weight": w} for w in weights]}


def placement(team: str) -> dict[str, Any]:
    """Every Placement field set (each child section takes the same ones)."""
    requirement = {"key": "gqr.dev/pool", "operator": "In", "values": [team]}
    term = {
        "labelSelector": {
            "matchLabels": {"app.kubernetes.io/name": "gqr"},
            "matchExpressions": [{"key": "tier", "operator": "Exists"}],
        },
        "namespaceSelector": {},
        "topologyKey": "kubernetes.io/hostname",
    }
    return {
        "nodeSelector": {"gqr.dev/pool": team},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": team, "effect": "NoSchedule"}
        ],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [requirement]}]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 50,
                        "preference": {
                            "matchExpressions": [
                                {"key": "gpu-memory", "operator": "Gt", "values": ["40"]}
                            ]
                        },
                    }
                ],
            },
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "podAffinityTerm": term}
                ]
            },
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]},
        },
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "minDomains": 2},
            {
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"team": team}},
                "matchLabelKeys": ["pod-template-hash"],
                "nodeAffinityPolicy": "Honor",
                "nodeTaintsPolicy": "Ignore",
            },
        ],
        "priorityClassName": f"gqr-{team}",
        "serviceAccountName": f"gqr-{team}",
        "imagePullSecrets": [{"name": f"regcred-{team}"}],
        "podLabels": {"team": team, "example.com/cost-centre": "c42"},
        "podAnnotations": {"example.com/owner": f"{team}@example.com"},
    }


# Every placement and engine field set, on every child section.
EVERYTHING: Spec = patched(
    llm={
        "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
        "runtime": "vllm",
        "extraArgs": ["--max-lora-rank", "64", "--gpu-memory-utilization=0.85", "--dtype", "bf16"],
        "env": [
            {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"},
            {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "w", "key": "k"}}},
        ],
        "updateStrategy": {"maxSurge": 2, "maxUnavailable": 1},
        **placement("llm"),
    },
    gateway=placement("gateway"),
    ctrPredictor=placement("ctr"),
    cooccurrence={"milvus": placement("milvus")},
    training=placement("training"),
)


# (case id, spec, the field its error must name)
INVALID: list[tuple[str, Spec, str]] = [
    ("unknown-task-type", patched(task={"type": "summary"}), "spec.task.type"),
    (
        "clarification-one-query",
        patched(task={"type": "clarification", "numQueries": 1}),
        "spec.task.numQueries",
    ),
    (
        "hint-two-queries",
        patched(task={"type": "hint", "numQueries": 2, "component": "singleChoice"}),
        "spec.task.numQueries",
    ),
    ("hint-multi-choice", patched(task={"type": "hint", "numQueries": 1}), "spec.task.component"),
    (
        "suggestion-eleven",
        patched(task={"type": "suggestion", "numQueries": 11}),
        "spec.task.numQueries",
    ),
    (
        "too-many-queries",
        patched(task={"type": "clarification", "numQueries": 17}),
        "spec.task.numQueries",
    ),
    ("weights-decreasing", patched(rollout=_steps(50, 10)), "spec.rollout.steps"),
    ("weights-repeated", patched(rollout=_steps(10, 10)), "spec.rollout.steps"),
    ("weight-over-100", patched(rollout=_steps(10, 150)), "spec.rollout.steps.weight"),
    ("no-steps", patched(rollout={"steps": []}), "spec.rollout.steps"),
    (
        "max-impressions-below-min",
        patched(rollout={"steps": [{"weight": 10, "minImpressions": 5000, "maxImpressions": 900}]}),
        "spec.rollout.steps",
    ),
    (
        "max-impressions-below-default-min",
        patched(rollout={"steps": [{"weight": 10, "maxImpressions": 900}]}),
        "spec.rollout.steps",
    ),
    (
        "on-inconclusive-unknown",
        patched(rollout={"analysis": {"onInconclusive": "promote"}}),
        "spec.rollout.analysis.onInconclusive",
    ),
    (
        "horizon-test-default-steps",  # the default steps have no end to plan for
        patched(rollout={"analysis": {"test": "horizon"}}),
        "spec.rollout.analysis.test",
    ),
    (
        "horizon-test-one-open-step",
        patched(
            rollout={
                "analysis": {"test": "horizon"},
                "steps": [
                    {"weight": 10, "minImpressions": 100, "maxImpressions": 5000},
                    {"weight": 50, "minImpressions": 100},
                    {"weight": 100, "minImpressions": 100},
                ],
            }
        ),
        "spec.rollout.analysis.test",
    ),
    (
        "unknown-test",
        patched(rollout={"analysis": {"test": "ttest"}}),
        "spec.rollout.analysis.test",
    ),
    (
        "promote-and-abort",
        patched(rollout={"promoteNow": True, "abort": True}),
        "spec.rollout.promoteNow",
    ),
    (
        "external-milvus-no-uri",
        patched(cooccurrence={"milvus": {"mode": "external"}}),
        "spec.cooccurrence.milvus.uri",
    ),
    (
        "managed-milvus-uri",
        patched(cooccurrence={"milvus": {"uri": "http://m:19530"}}),
        "spec.cooccurrence.milvus.uri",
    ),
    ("cron-words", patched(training={"schedule": "every sunday"}), "spec.training.schedule"),
    ("ctr-zero-nodes", patched(training={"ctr": {"nodes": 0}}), "spec.training.ctr.nodes"),
    ("dpo-too-many-nodes", patched(training={"dpo": {"nodes": 65}}), "spec.training.dpo.nodes"),
    ("cron-four-fields", patched(training={"schedule": "0 3 * *"}), "spec.training.schedule"),
    (
        "tokens",
        patched(llm={"model": "hf://a/b", "maxInputTokens": 2048, "maxTotalTokens": 1024}),
        "spec.llm.maxTotalTokens",
    ),
    ("s3-without-store", patched(llm={"model": "s3://m/x"}), "spec.llm.model"),
    (
        "pvc-claim-mismatch",
        patched(llm={"model": "pvc://other/m", "modelStorage": {"pvc": {"claimName": "models"}}}),
        "spec.llm.model",
    ),
    (
        "pvc-and-store",
        patched(
            llm={
                "model": "hf://a/b",
                "modelStorage": {
                    "pvc": {"claimName": "m"},
                    "objectStore": {"secretRef": {"name": "s"}},
                },
            }
        ),
        "spec.llm.modelStorage",
    ),
    (
        "duplicate-adapters",
        patched(
            llm={
                "model": "hf://a/b",
                "loraAdapters": [
                    {"name": "de", "uri": "hf://a/de"},
                    {"name": "de", "uri": "hf://a/de2"},
                ],
            }
        ),
        "spec.llm.loraAdapters",
    ),
    (
        "ctr-min-over-max",
        patched(ctrPredictor={"minReplicas": 5, "maxReplicas": 2}),
        "spec.ctrPredictor.minReplicas",
    ),
    ("ctr-zero-raw", patched(ctrPredictor={"minReplicas": 0}), "spec.ctrPredictor.minReplicas"),
    (
        "temperature",
        patched(llm={"model": "hf://a/b", "decoding": {"temperature": 3}}),
        "spec.llm.decoding.temperature",
    ),
    (
        "top-p-zero",
        patched(llm={"model": "hf://a/b", "decoding": {"topP": 0}}),
        "spec.llm.decoding.topP",
    ),
    ("typo-field", patched(llm={"model": "hf://a/b", "modle": "x"}), "spec.llm.modle"),
    (
        "bad-quantity",
        patched(llm={"model": "hf://a/b", "resources": {"limits": {"cpu": "lots"}}}),
        "spec.llm.resources.limits",
    ),
    ("log-uri-scheme", patched(logs={"uri": "ftp://logs"}), "spec.logs.uri"),
    (
        "signing-key-named-previous",
        patched(gateway={"signingKeySecretRef": {"name": "k", "key": "previous"}}),
        "spec.gateway.signingKeySecretRef.key",
    ),
    (
        "egress-not-a-cidr",
        patched(network={"egress": {"restrict": True, "allow": [{"cidr": "everywhere"}]}}),
        "spec.network.egress.allow",
    ),
    (
        "egress-port-zero",
        patched(network={"egress": {"allow": [{"cidr": "0.0.0.0/0", "ports": [0]}]}}),
        "spec.network.egress.allow",
    ),
    (
        "impression-ttl-short",
        patched(gateway={"impressionTtlSeconds": 5}),
        "spec.gateway.impressionTtlSeconds",
    ),
    ("missing-llm", _without("llm"), "spec.llm"),
    (
        "dpo-one-candidate",
        patched(training={"dpo": {"candidates": 1}}),
        "spec.training.dpo.candidates",
    ),
    (
        "dpo-too-few-prompts",
        patched(training={"dpo": {"promptsPerIteration": 2}}),
        "spec.training.dpo.promptsPerIteration",
    ),
    (
        "engine-env-set-by-operator",
        patched(llm={"model": "hf://a/b", "env": [{"name": "MODEL_ID", "value": "x"}]}),
        "spec.llm.env",
    ),
    (
        "engine-env-bad-name",
        patched(llm={"model": "hf://a/b", "env": [{"name": "1-BAD", "value": "x"}]}),
        "spec.llm.env.name",
    ),
    (
        "engine-env-literal-credential",
        patched(llm={"model": "hf://a/b", "env": [{"name": "API_TOKEN", "value": "x"}]}),
        "spec.llm.env",
    ),
    (
        "engine-flag-set-by-operator",
        patched(llm={"model": "hf://a/b", "runtime": "vllm", "extraArgs": ["--max_model_len=9"]}),
        "spec.llm.extraArgs",
    ),
    (
        "update-strategy-stuck",
        patched(llm={"model": "hf://a/b", "updateStrategy": {"maxSurge": 0}}),
        "spec.llm.updateStrategy",
    ),
    (
        "node-selector-key",
        patched(gateway={"nodeSelector": {"bad key!": "x"}}),
        "spec.gateway.nodeSelector",
    ),
    (
        "pod-label-value",
        patched(training={"podLabels": {"team": "not a label value"}}),
        "spec.training.podLabels",
    ),
    (
        "priority-class-name",
        patched(ctrPredictor={"priorityClassName": "Gold_Tier"}),
        "spec.ctrPredictor.priorityClassName",
    ),
    (
        "node-affinity-exists-with-values",
        patched(
            cooccurrence={
                "milvus": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": "a", "operator": "Exists", "values": ["x"]}
                                        ]
                                    }
                                ]
                            }
                        }
                    }
                }
            }
        ),
        "spec.cooccurrence.milvus.affinity.nodeAffinity."
        "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.matchExpressions",
    ),
    (
        "spread-min-domains-schedule-anyway",
        patched(
            llm={
                "model": "hf://a/b",
                "topologySpreadConstraints": [
                    {"topologyKey": "z", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 2}
                ],
            }
        ),
        "spec.llm.topologySpreadConstraints",
    ),
    (
        "pause-words",
        patched(rollout={"steps": [{"weight": 10, "pause": "10 minutes"}]}),
        "spec.rollout.steps.pause",
    ),
]
