"""Sticky weighted routing: shares, minimal movement on weight changes, hot reload."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from gqr_contracts.routing import ArmConfig, BackendSpec, RoutingConfig
from gqr_serving.backends import GuardedBackend
from gqr_serving.gateway.router import Router, assign
from gqr_serving.gateway.routing_file import RoutingError, parse_routing

KEYS = [f"user-{i}" for i in range(20_000)]
SPEC = BackendSpec(kind="tgi", url="http://llm")


def arms(**weights: float) -> tuple[ArmConfig, ...]:
    return tuple(
        ArmConfig(name=n, weight=w, model_version=f"v-{n}", backend=SPEC)
        for n, w in weights.items()
    )


def routed(table: tuple[ArmConfig, ...]) -> dict[str, str]:
    return {k: assign(table, k, "salt").name for k in KEYS}


def test_canary_share_and_minimal_movement_90_10_to_80_20() -> None:
    before = routed(arms(stable=90, canary=10))
    share = sum(a == "canary" for a in before.values()) / len(KEYS)
    assert 0.09 <= share <= 0.11
    after = routed(arms(stable=80, canary=20))
    assert 0.19 <= sum(a == "canary" for a in after.values()) / len(KEYS) <= 0.21
    moved = [k for k in KEYS if before[k] != after[k]]
    assert all(before[k] == "stable" and after[k] == "canary" for k in moved)
    assert all(after[k] == "canary" for k in KEYS if before[k] == "canary")  # nobody left
    assert len(moved) / len(KEYS) == pytest.approx(0.10, abs=0.01)


def test_three_arms_raising_one_weight_only_moves_users_to_it() -> None:
    before = routed(arms(a=60, b=30, c=10))
    after = routed(arms(a=60, b=30, c=22.5))  # c alone changed: share 10% -> 20%
    moved = [k for k in KEYS if before[k] != after[k]]
    assert {after[k] for k in moved} == {"c"}
    assert len(moved) / len(KEYS) == pytest.approx(0.10, abs=0.01)  # exactly the share gained
    lost = {arm: sum(before[k] == arm for k in moved) / len(moved) for arm in ("a", "b")}
    assert lost["a"] == pytest.approx(2 / 3, abs=0.05)  # a and b give in proportion


def test_assignment_is_sticky_and_weight_zero_gets_nobody() -> None:
    table = arms(stable=50, canary=50, off=0)
    assert routed(table) == routed(table)
    assert "off" not in set(routed(table).values())


def test_routing_file_errors_name_the_field() -> None:
    with pytest.raises(RoutingError, match=r"arms\[0\]\.weight=-1: .*greater than or equal to 0"):
        parse_routing(
            json.dumps(
                {
                    "arms": [
                        {
                            "name": "stable",
                            "weight": -1,
                            "model_version": "v1",
                            "backend": {"url": "x"},
                        }
                    ]
                }
            )
        )
    with pytest.raises(RoutingError, match="unique"):
        parse_routing(
            "arms:\n" + "  - {name: a, weight: 1, model_version: v, backend: {url: u}}\n" * 2
        )
    with pytest.raises(RoutingError, match="not valid JSON/YAML"):
        parse_routing("arms: [")


def _config(weight_canary: float) -> str:
    return json.dumps(
        {
            "salt": "s",
            "decoding": {"temperature": 0.5, "seed_policy": "per_user"},
            "arms": [
                {
                    "name": "stable",
                    "weight": 100 - weight_canary,
                    "model_version": "v1",
                    "backend": {"kind": "tgi", "url": "http://stable"},
                },
                {
                    "name": "canary",
                    "weight": weight_canary,
                    "model_version": "v2",
                    "backend": {"kind": "tgi", "url": "http://canary"},
                    "decoding": {"temperature": 0.9},
                },
            ],
        }
    )


def _factory(made: list[str]):  # type: ignore[no-untyped-def]
    def make(arm: ArmConfig) -> GuardedBackend:
        from gateway_fakes import ScriptedBackend, guarded

        made.append(arm.name)
        return guarded(ScriptedBackend("x", name=arm.name))

    return make


def test_configmap_style_symlink_swap_is_picked_up(tmp_path: Path) -> None:
    # kubelet layout: routing.yaml -> ..data/routing.yaml, ..data -> ..<timestamp>/
    for name, w in (("..v1", 10), ("..v2", 20)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "routing.yaml").write_text(_config(w))
    os.symlink("..v1", tmp_path / "..data")
    os.symlink("..data/routing.yaml", tmp_path / "routing.yaml")
    made: list[str] = []
    router = Router.from_file(tmp_path / "routing.yaml", factory=_factory(made))
    assert router.arms["canary"].config.weight == 10
    assert router.arms["canary"].decoding.temperature == 0.9  # arm over file default
    assert router.arms["stable"].decoding.seed_policy == "per_user"
    os.symlink("..v2", tmp_path / "..tmp")
    os.replace(tmp_path / "..tmp", tmp_path / "..data")  # the atomic swap kubelet does
    assert router.changed()
    router.reload()
    assert router.arms["canary"].config.weight == 20
    assert made == ["stable", "canary"]  # unchanged backends are reused


def test_bad_reload_keeps_the_table_in_force(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    path.write_text(_config(10))
    router = Router.from_file(path, factory=_factory([]))
    time.sleep(0.01)
    path.write_text("{broken")
    with pytest.raises(RoutingError):
        router.reload()
    assert router.arms["canary"].config.weight == 10 and router.last_error


def test_single_arm_routes_everyone() -> None:
    config = RoutingConfig(arms=arms(stable=1))
    router = Router(config, factory=_factory([]))
    assert {router.route(k).name for k in KEYS[:100]} | {router.route(None).name} == {"stable"}
