"""Fixtures for the simulated world's tests: one world and one day of requests, built once."""

from __future__ import annotations

from datetime import date

import pytest

from gqr_training.sim import Request, World

DAY = date(2025, 3, 1)


@pytest.fixture(scope="session")
def world() -> World:
    return World(seed=11)


@pytest.fixture(scope="session")
def requests(world: World) -> list[Request]:
    return world.sample_requests(DAY, 400)
