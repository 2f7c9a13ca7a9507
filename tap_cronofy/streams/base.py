"""What every Cronofy stream is given (settings, client, accounts, report), and the one
private SDK method the tap overrides."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from singer_sdk import Stream

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_cronofy.accounts import Accounts
    from tap_cronofy.client import CronofyClient
    from tap_cronofy.report import RunReport
    from tap_cronofy.settings import Settings


@dataclass(frozen=True)
class Services:
    """Built lazily by the tap: discovery and --about never construct them."""

    settings: t.Callable[[], Settings]
    client: t.Callable[[], CronofyClient]
    accounts: t.Callable[[], Accounts]
    report: RunReport
    checkpoint: t.Callable[[], None]  # write a STATE message now, if one is due


# The one private SDK surface this tap overrides, with why. tests/test_sdk_surface.py fails
# when an SDK upgrade changes its signature, so the override is re-checked then.
PRIVATE_SDK_OVERRIDES = {
    "_increment_stream_state": (
        "Streams write each partition's bookmark once, when the partition is complete (and "
        "also for partitions without records, which the SDK never bookmarks). The SDK's "
        "per-record increment looks the partition up in the state's list for every record, "
        "O(accounts) per record, and would leave progress markers to undo when an account "
        "fails halfway."
    ),
}


class CronofyStream(Stream):
    """A Cronofy stream: records from the client's replies, state written per partition."""

    def __init__(self, tap: Tap, services: Services) -> None:
        super().__init__(tap)
        self.services = services

    @property
    def settings(self) -> Settings:
        return self.services.settings()

    @property
    def client(self) -> CronofyClient:
        return self.services.client()

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: ``last_modified`` is Cronofy's clock, never a future data value."""
        return None

    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        """Nothing per record (see PRIVATE_SDK_OVERRIDES): ``get_records`` writes the
        bookmark once the partition is complete."""
