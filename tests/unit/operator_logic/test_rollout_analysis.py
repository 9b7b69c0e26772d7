"""The canary analysis: known cases, peeking-safe false-positive rate, power, properties."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from statistics import NormalDist

import numpy as np
from benchmarks.bench_rollout_power import simulate_step
from hypothesis import given, settings
from hypothesis import strategies as st

from gqr_operator.rollout.analysis import AnalysisConfig, ArmCounts, analyse

CFG = AnalysisConfig(confidence=0.95, max_relative_drop=0.0, min_impressions=1000)


def test_below_min_impressions_always_waits_even_on_a_huge_difference() -> None:
    r = analyse(ArmCounts(999, 10), ArmCounts(999, 500), CFG)
    assert r.decision == "wait"
    assert "999/1000" in r.reason


def test_equal_ctrs_are_inconclusive_and_the_interval_covers_zero() -> None:
    r = analyse(ArmCounts(50_000, 2500), ArmCounts(50_000, 2500), CFG)
    assert r.decision == "wait"
    assert r.relative_lift == 0.0
    assert r.lift_lower is not None and r.lift_upper is not None
    assert r.lift_lower < 0 < r.lift_upper
    assert r.p_value == 1.0


def test_a_clearly_worse_canary_fails_with_the_ctrs_in_the_reason() -> None:
    r = analyse(ArmCounts(50_000, 2500), ArmCounts(20_000, 700), CFG)
    assert r.decision == "fail"
    assert r.p_value < 0.05
    assert r.lift_upper is not None and r.lift_upper < 0
    assert "3.5000%" in r.reason and "5.0000%" in r.reason


def test_a_clearly_better_canary_passes() -> None:
    r = analyse(ArmCounts(50_000, 2500), ArmCounts(20_000, 1300), CFG)
    assert r.decision == "pass"
    assert r.lift_lower is not None and r.lift_lower > 0
    assert math.isclose(r.relative_lift or 0, 0.3)


def test_the_allowed_drop_lets_a_slightly_worse_canary_pass() -> None:
    stable, canary = ArmCounts(400_000, 20_000), ArmCounts(400_000, 19_800)  # 1% worse
    assert analyse(stable, canary, CFG).decision != "pass"
    lenient = AnalysisConfig(max_relative_drop=0.05, min_impressions=1000)
    r = analyse(stable, canary, lenient)
    assert r.decision == "pass"
    assert r.lift_lower is not None and r.lift_lower > -0.05


def test_zero_clicks_and_clicks_above_impressions_do_not_crash() -> None:
    assert analyse(ArmCounts(5000, 0), ArmCounts(5000, 0), CFG).decision == "wait"
    r = analyse(ArmCounts(5000, 0), ArmCounts(5000, 300), CFG)
    assert r.relative_lift is None and r.decision == "pass"
    assert ArmCounts(10, 50).clicks == 10 and ArmCounts(-3, 2).impressions == 0
    json.dumps(r.to_status(), allow_nan=False)


def _naive_significant(n_s: int, x_s: int, n_c: int, x_c: int, z: float) -> bool:
    pooled = (x_s + x_c) / (n_s + n_c)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_s + 1 / n_c))
    return se > 0 and abs(x_c / n_c - x_s / n_s) / se > z


def test_peeking_keeps_the_sequential_false_positive_rate_below_alpha_but_not_a_z_test() -> None:
    """300 A/A experiments (5% CTR both arms), 20 peeks of 1000 impressions per arm each."""
    rng = np.random.default_rng(2024)
    experiments, peeks, per_peek, ctr, alpha = 300, 20, 1000, 0.05, 0.05
    z = NormalDist().inv_cdf(1 - alpha / 2)
    sequential = naive = 0
    for _ in range(experiments):
        xs = rng.binomial(per_peek, ctr, size=peeks).cumsum()
        xc = rng.binomial(per_peek, ctr, size=peeks).cumsum()
        seq_hit = naive_hit = False
        for i in range(peeks):
            n = per_peek * (i + 1)
            r = analyse(ArmCounts(n, int(xs[i])), ArmCounts(n, int(xc[i])), CFG)
            seq_hit |= r.decision != "wait"
            naive_hit |= _naive_significant(n, int(xs[i]), n, int(xc[i]), z)
        sequential += seq_hit
        naive += naive_hit
    seq_rate, naive_rate = sequential / experiments, naive / experiments
    print(f"A/A false positives with 20 peeks: mSPRT {seq_rate:.3f}, z-test {naive_rate:.3f}")
    assert seq_rate <= alpha + 0.02
    assert naive_rate > 0.10
    assert naive_rate > seq_rate


def test_a_real_30_percent_lift_on_5_percent_ctr_is_detected_as_pass() -> None:
    rng = np.random.default_rng(7)
    outcomes = []
    for _ in range(50):
        xs = rng.binomial(2000, 0.05, size=20).cumsum()
        xc = rng.binomial(2000, 0.065, size=20).cumsum()
        decision = "wait"
        for i in range(20):  # peek until a decision, like the machine does
            n = 2000 * (i + 1)
            decision = analyse(ArmCounts(n, int(xs[i])), ArmCounts(n, int(xc[i])), CFG).decision
            if decision != "wait":
                break
        outcomes.append(decision)
    assert outcomes.count("fail") == 0
    assert outcomes.count("pass") >= 48


arms = st.tuples(st.integers(0, 10**9), st.integers(-5, 10**9)).map(lambda t: ArmCounts(*t))
configs = st.builds(
    AnalysisConfig,
    confidence=st.floats(0.5, 0.999),
    max_relative_drop=st.floats(0.0, 0.5),
    min_impressions=st.integers(0, 10**6),
    tau_relative=st.floats(0.01, 1.0),
    test=st.sampled_from(["msprt", "horizon"]),
    horizon=st.integers(0, 10**7),
)


@settings(max_examples=300, deadline=None, database=None)
@given(stable=arms, canary=arms, cfg=configs)
def test_never_pass_below_min_impressions_and_never_crash(
    stable: ArmCounts, canary: ArmCounts, cfg: AnalysisConfig
) -> None:
    r = analyse(stable, canary, cfg)
    if min(stable.impressions, canary.impressions) < max(cfg.min_impressions, 1):
        assert r.decision == "wait"
    assert 0.0 <= r.p_value <= 1.0
    json.dumps(r.to_status(), allow_nan=False)
    if r.decision == "pass" and r.lift_lower is not None:
        assert r.lift_lower >= -cfg.max_relative_drop - 1e-6
    if r.decision == "fail" and r.lift_upper is not None:
        assert r.lift_upper <= -cfg.max_relative_drop + 1e-6


small_arms = st.tuples(st.integers(0, 10**6), st.integers(0, 10**5)).map(lambda t: ArmCounts(*t))


@settings(max_examples=300, deadline=None, database=None)
@given(a=small_arms, b=small_arms)
def test_swapping_the_arms_swaps_pass_and_fail(a: ArmCounts, b: ArmCounts) -> None:
    forward, backward = analyse(a, b, CFG), analyse(b, a, CFG)
    mirror = {"pass": "fail", "fail": "pass", "wait": "wait"}
    assert backward.decision == mirror[forward.decision]
    assert math.isclose(forward.p_value, backward.p_value, rel_tol=1e-9, abs_tol=1e-300)


# --- the horizon test (group-sequential up to the step's maxImpressions) -------------------

HORIZON = 5000
H_CFG = AnalysisConfig(confidence=0.9, min_impressions=1000, test="horizon", horizon=HORIZON)
M_CFG = AnalysisConfig(confidence=0.9, min_impressions=1000)


def _run(
    rng: np.random.Generator, ctr_s: float, ctr_c: float, cfg: AnalysisConfig, share: float = 0.5
) -> str:
    """One step as the machine runs it: a look every 100 impressions of the smaller arm until a
    decision or until both arms reached the horizon (then: inconclusive)."""
    return simulate_step(rng, ctr_s, ctr_c, cfg, HORIZON, share)[0]


def test_horizon_test_keeps_alpha_under_continuous_peeking_at_even_and_uneven_splits() -> None:
    """A/A at 11% CTR, a look every 100 impressions (50 looks) up to the 5,000 horizon: the
    false decision rate stays under alpha = 0.1, at 50/50 and at a 10% canary."""
    rng = np.random.default_rng(11)
    for share in (0.5, 0.1):
        runs = [_run(rng, 0.11, 0.11, H_CFG, share) for _ in range(400)]
        rate = 1 - runs.count("inconclusive") / len(runs)
        print(f"horizon test, A/A at canary share {share}: {rate:.3f} decided (alpha 0.1)")
        assert rate <= 0.1 + 0.03


def test_horizon_test_decides_a_true_lift_by_the_horizon_more_often_than_msprt() -> None:
    """+20% on 11% CTR, 5,000 impressions per arm at most: what the canary rollout of the e2e
    sees. The horizon test passes it far more often (0.96 vs 0.77 for the mSPRT at this seed)."""
    rng = np.random.default_rng(5)
    horizon = [_run(rng, 0.11, 0.132, H_CFG) for _ in range(200)]
    msprt = [_run(rng, 0.11, 0.132, M_CFG) for _ in range(200)]
    p_h, p_m = horizon.count("pass") / 200, msprt.count("pass") / 200
    print(f"+20% at 5,000 per arm: passed by horizon {p_h:.2f}, by msprt {p_m:.2f}")
    assert "fail" not in horizon
    assert p_h >= 0.8
    assert p_h >= p_m + 0.15


def test_horizon_p_value_boundary_and_interval_agree_at_the_horizon() -> None:
    # At t = 1 the test is |Z| >= 1.96 (confidence 0.9: alpha/4 = 0.025 in each tail).
    stable = ArmCounts(HORIZON, 550)
    passing = analyse(stable, ArmCounts(HORIZON, 640), H_CFG)  # z ~ 2.8
    assert passing.decision == "pass"
    assert passing.p_value < 0.1
    assert passing.lift_lower is not None and 0 < passing.lift_lower < 0.2
    assert "100% of the horizon 5000" in passing.reason
    short = analyse(stable, ArmCounts(HORIZON, 610), H_CFG)  # z ~ 1.9: not quite
    assert short.decision == "wait" and short.p_value > 0.1
    assert short.lift_lower is not None and short.lift_lower < 0 < (short.lift_upper or 1)
    # Half way, the same lift needs sqrt(2) x the evidence: the early boundary is higher.
    half = analyse(ArmCounts(HORIZON // 2, 275), ArmCounts(HORIZON // 2, 330), H_CFG)  # z ~ 2.4
    assert half.decision == "wait"
    assert "50% of the horizon" in half.reason
    # Without an end (horizon 0), the spec's choice falls back to the always-valid test.
    no_end = analyse(stable, ArmCounts(HORIZON, 660), replace(H_CFG, horizon=0))
    assert no_end.decision == analyse(stable, ArmCounts(HORIZON, 660), M_CFG).decision
    assert "horizon" not in no_end.reason
