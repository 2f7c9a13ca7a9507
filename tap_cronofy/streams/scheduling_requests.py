"""scheduling_requests: requests queried by id, emitted when new or changed since the last run."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_cronofy.accounts import APP_REFUSED, SecretCredential
from tap_cronofy.client import format_time
from tap_cronofy.errors import CredentialError, CronofyAPIError
from tap_cronofy.schemas import SCHEDULING_REQUEST
from tap_cronofy.streams.base import CronofyStream, fingerprint
from tap_cronofy.undeclared import Undeclared, leaves

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

QUERY_BATCH_SIZE = 10  # Cronofy answers at most the 10 most recently created ids
STATE_KEY = "fingerprints"
ADVICE = {
    401: "The scheduler secret was not recognised: set scheduler_client_secret (or "
    "client_secret) to the client_secret of an Internal Application linked to the "
    "Organizational Unit.",
    403: "The application may not query scheduling requests: it must be an Internal "
    "Application and the organisation needs the Scheduler plan.",
    423: "Cronofy reports the organisation's credentials locked.",
}
FALLBACK_REFUSED = (  # scheduler_client_secret unset: the application's client_secret was sent
    "scheduler_client_secret is not set, so client_secret was sent, and refused: if "
    "client_secret itself is wrong, fixing it fixes this too; otherwise set "
    "scheduler_client_secret to the client_secret of an Internal Application linked to the "
    "Organizational Unit."
)


class SchedulingRequestsStream(CronofyStream):
    """Scheduling requests by id, emitted when new or changed since the last run."""

    name = "scheduling_requests"
    primary_keys: t.ClassVar[list[str]] = ["scheduling_request_id"]
    replication_key = "last_modified"
    is_sorted = False
    schema = SCHEDULING_REQUEST

    @cached_property
    def _undeclared(self) -> Undeclared:
        """A field no one documented yet is not loaded (the schema does not declare it):
        said once per run, by name, so that it can be declared."""
        return Undeclared(
            self.logger, "scheduling request", leaves(SCHEDULING_REQUEST["properties"])
        )

    @cached_property
    def _credential(self) -> SecretCredential:
        return SecretCredential(self.settings.scheduler_secret or "", "scheduler client secret")

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if not self.settings.reads_scheduling_requests:
            self.logger.info(
                "Skipping scheduling_requests: shard %s reads them (scheduling_requests_shard).",
                self.settings.scheduling_requests_shard,
            )
            return
        ids = self.settings.scheduling_request_ids()
        if not ids:
            self.logger.info(
                "Skipping scheduling_requests: no scheduling_request_ids or "
                "scheduling_request_ids_file is set (Cronofy has no endpoint that lists them)."
            )
            return
        fallback = self.settings.scheduler_secret == self.settings.client_secret
        if fallback and APP_REFUSED in self.services.report.failed_accounts.values():
            self.logger.warning(
                "Skipping scheduling_requests: Cronofy refused client_secret earlier in this "
                "run (above), and scheduler_client_secret is not set, so client_secret would "
                "be its Bearer too. Its state is kept; fixing client_secret fixes both."
            )
            return
        state = self.stream_state
        previous = dict(item.rsplit(":", 1) for item in state.get(STATE_KEY) or [])
        incremental = STATE_KEY in state
        fingerprints = {i: previous[i] for i in ids if i in previous}
        found = emitted = 0
        missing: list[str] = []
        batches = [ids[i : i + QUERY_BATCH_SIZE] for i in range(0, len(ids), QUERY_BATCH_SIZE)]
        url = self.client.url("/v1/scheduling_requests/query")
        for batch in batches:
            try:
                reply = self.client.post(
                    url, {"scheduling_request_ids": batch}, credential=self._credential
                )
            except CredentialError as exc:
                advice = ADVICE.get(exc.status or 0, "")
                if (
                    exc.status == 401
                    and self.settings.scheduler_secret == self.settings.client_secret
                ):
                    advice = FALLBACK_REFUSED
                raise CronofyAPIError(f"{exc}. {advice}", status=exc.status) from exc
            seen_at = format_time(reply.server_time)
            returned = {}
            for item in reply.body.get("scheduling_requests") or ():
                request = item.get("scheduling_request") or {}
                if (request_id := request.get("scheduling_request_id")) in batch:
                    returned[request_id] = request
            missing.extend(i for i in batch if i not in returned)
            found += len(returned)
            for request_id in batch:
                if (request := returned.get(request_id)) is None:
                    continue
                self._undeclared.check(request)
                digest = fingerprint(request, 16)
                if incremental and fingerprints.get(request_id) == digest:
                    continue
                yield {**request, "last_modified": seen_at}
                emitted += 1
                fingerprints[request_id] = digest  # only once the record is out
                state[STATE_KEY] = _encode(fingerprints, ids)
        if missing:
            self.logger.warning(
                "%d of %d scheduling request ids were not found by Cronofy (unknown, or not "
                "in this Organizational Unit).",
                len(missing),
                len(ids),
            )
            self.logger.debug("Scheduling request ids not found: %s", ", ".join(missing))
        self.logger.info(
            "Queried %d scheduling request ids in %d requests; %d found, %d new or changed.",
            len(ids),
            len(batches),
            found,
            emitted,
        )
        self.services.report.tally(self.name).records += emitted
        state[STATE_KEY] = _encode(fingerprints, ids)  # ids no longer configured drop out


def _encode(fingerprints: dict[str, str], ids: list[str]) -> list[str]:
    """A list, not a dict: Meltano replaces lists in state wholesale, so removed ids go."""
    return [f"{i}:{fingerprints[i]}" for i in ids if i in fingerprints]
