"""Fixtures: a fresh simulator on 127.0.0.1 for each test."""

from __future__ import annotations

import pytest

from simulator import Simulator, SimulatorServer


@pytest.fixture
def sim():
    simulator = Simulator(seed=11, accounts=3, events_per_account=60, page_size=20)
    server = SimulatorServer(simulator).start()
    simulator.url = server.url  # type: ignore[attr-defined]
    yield simulator
    server.stop()
