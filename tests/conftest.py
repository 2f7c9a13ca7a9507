"""Fixtures: a fresh simulator on 127.0.0.1 for each test, and PostgreSQL when asked."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from harness.postgres import started
from simulator import Simulator, SimulatorServer

# Property-based and stateful tests: "ci" (the default) is seeded and bounded, so that a
# failure reproduces on any machine and `make test` stays near ten minutes; "deep" searches
# far more cases (HYPOTHESIS_PROFILE=deep). CONTRIBUTING.md says how to replay a failure.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=150,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=5000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def sim():
    simulator = Simulator(seed=11, accounts=3, events_per_account=60, page_size=20)
    server = SimulatorServer(simulator).start()
    simulator.url = server.url  # type: ignore[attr-defined]
    yield simulator
    server.stop()


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server (CI installs Debian's package; see .ci/run)."""
    server = started()
    yield server
    server.stop()
