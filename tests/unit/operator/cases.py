"""Shared spec cases: a minimal valid spec, invalid specs with the field each must name, and
Python twins of the CRD's CEL rules (the apiserver evaluates the real ones; an integration
test can feed INVALID to it with dry-run)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

Spec = dict[str, Any]

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


_CRON = re.compile(
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|([0-9*?/,LW#A-Za-z-]+\s+){4}[0-9*?/,LW#A-Za-z-]+)$"
)
_RANGES = {"suggestion": (1, 10), "clarification": (2, 16), "hint": (1, 1), "completion": (1, 10)}
Twin = Callable[[Any], bool]


def _task_range(kind: str) -> Twin:
    low, high = _RANGES[kind]
    return lambda s: s["type"] != kind or low <= s["numQueries"] <= high


def _pvc_model(s: dict[str, Any]) -> bool:
    if not s["model"].startswith("pvc://"):
        return True
    pvc = s["modelStorage"].get("pvc")
    return pvc is not None and s["model"].startswith(f"pvc://{pvc['claimName']}/")


def _increasing(steps: list[dict[str, Any]]) -> bool:
    weights = [x["weight"] for x in steps]
    return weights == sorted(weights) and len(set(weights)) == len(weights)


# Rule path -> Python twins in the CRD's order (transition rules have no twin).
CEL_TWINS: dict[str, list[Twin]] = {
    "spec.task": [
        *(_task_range(k) for k in _RANGES),
        lambda s: s["type"] != "hint" or s["component"] == "singleChoice",
    ],
    "spec.llm": [
        lambda s: s["maxTotalTokens"] > s["maxInputTokens"],
        lambda s: (
            not s["model"].startswith(("s3://", "gs://")) or "objectStore" in s["modelStorage"]
        ),
        _pvc_model,
    ],
    "spec.llm.modelStorage": [lambda s: not ("pvc" in s and "objectStore" in s)],
    "spec.ctrPredictor": [
        lambda s: s["minReplicas"] <= s["maxReplicas"],
        lambda s: s["deploymentMode"] == "Serverless" or s["minReplicas"] >= 1,
    ],
    "spec.cooccurrence.milvus": [
        lambda s: s["mode"] != "external" or "uri" in s,
        lambda s: s["mode"] != "managed" or "uri" not in s,
    ],
    "spec.training.schedule": [lambda s: bool(_CRON.match(s))],
    "spec.rollout.steps": [_increasing],
    "spec.rollout.steps[]": [
        lambda s: not s["maxImpressions"] or s["maxImpressions"] >= s["minImpressions"]
    ],
    "spec.rollout": [
        lambda s: not (s["promoteNow"] and s["abort"]),
        lambda s: (
            s["analysis"]["test"] != "horizon"
            or all(t["weight"] == 100 or t["maxImpressions"] > 0 for t in s["steps"])
        ),
    ],
}

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
        "pause-words",
        patched(rollout={"steps": [{"weight": 10, "pause": "10 minutes"}]}),
        "spec.rollout.steps.pause",
    ),
]
