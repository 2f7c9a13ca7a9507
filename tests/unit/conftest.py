"""The unit layer: in-process, no network, no subprocess. Every test here must be fast."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """A unit test that opens a socket is in the wrong layer."""

    def refuse(*args, **kwargs):
        raise AssertionError("tests/unit must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(autouse=True)
def own_secrets():
    """Each test starts with the process's secret registry as it found it."""
    from tap_cronofy.redact import SECRETS

    saved = (set(SECRETS._secrets), dict(SECRETS._by_ending))
    yield
    SECRETS._secrets, SECRETS._by_ending = saved
