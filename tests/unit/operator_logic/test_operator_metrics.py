"""Per-GQRDeployment metrics on the operator's /metrics: what a dashboard of the fleet reads."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest

from gqr_operator import metrics

CANARY = {
    "phase": "Canary",
    "pipeline": {"phase": "Succeeded", "consecutiveFailures": 1},
    "rollout": {
        "weight": 20,
        "lastAnalysis": {
            "decision": "wait",
            "stable": {"impressions": 4000, "clicks": 440},
            "canary": {"impressions": 1000, "clicks": 130},
            "stableCtr": 0.11,
            "canaryCtr": 0.13,
        },
    },
}


def scrape() -> str:
    return generate_latest(REGISTRY).decode()


def test_a_canary_shows_its_weight_counts_ctr_and_decision() -> None:
    metrics.observe("team-a", "search", CANARY)
    text = scrape()
    assert 'gqr_deployment_phase{name="search",namespace="team-a",phase="Canary"} 1.0' in text
    assert 'gqr_operator_canary_weight{name="search",namespace="team-a"} 20.0' in text
    assert (
        'gqr_deployment_arm_impressions{arm="canary",name="search",namespace="team-a"} 1000.0'
        in text
    )
    assert 'gqr_deployment_arm_ctr{arm="stable",name="search",namespace="team-a"} 0.11' in text
    assert (
        'gqr_deployment_last_decision{decision="wait",name="search",namespace="team-a"} 1.0' in text
    )
    assert (
        'gqr_deployment_pipeline_consecutive_failures{name="search",namespace="team-a"} 1.0' in text
    )
    metrics.forget("team-a", "search")


def test_a_phase_left_behind_and_a_deleted_deployment_leave_no_series() -> None:
    metrics.observe("team-a", "search", CANARY)
    metrics.observe("team-b", "other", {"phase": "Ready"})
    training = {"phase": "Training", "pipeline": {"phase": "Running", "currentStep": "ctr-train"}}
    metrics.observe("team-a", "search", training)
    text = scrape()
    assert 'phase="Canary"' not in text and 'phase="Training"' in text
    assert (
        'gqr_deployment_pipeline_step{name="search",namespace="team-a",step="ctr-train"} 1.0'
        in text
    )
    assert 'arm="canary",name="search"' not in text  # no analysis in this pass
    metrics.forget("team-a", "search")
    text = scrape()
    assert 'name="search"' not in text
    assert 'gqr_deployment_phase{name="other",namespace="team-b",phase="Ready"} 1.0' in text
    metrics.forget("team-b", "other")
