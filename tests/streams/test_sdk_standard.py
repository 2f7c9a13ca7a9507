"""The Meltano SDK's standard tap tests, run against a live simulator."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from harness.tap import tap_config
from simulator import Simulator, SimulatorServer
from tap_cronofy.tap import TapCronofy

_SIM = Simulator(seed=5, accounts=2, events_per_account=40, page_size=15, scheduling_requests=25)
_SERVER = SimulatorServer(_SIM).start()

TestTapCronofy = get_tap_test_class(
    TapCronofy,
    config=tap_config(_SIM, _SERVER.url, scheduling_request_ids=list(_SIM.scheduling)),
    suite_config=SuiteConfig(max_records_limit=None),
)
