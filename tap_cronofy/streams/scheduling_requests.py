"""scheduling_requests: requests queried by id, emitted when new or changed since the last run."""

from __future__ import annotations

import typing as t
from collections import Counter
from functools import cached_property

from tap_cronofy.accounts import APP_REFUSED, SecretCredential
from tap_cronofy.client import format_time
from tap_cronofy.errors import CredentialError, CronofyAPIError
from tap_cronofy.idsource import IdSourceError
from tap_cronofy.scheduling_plan import (
    GONE,
    OPEN,
    SETTLED,
    Tracked,
    after_query,
    decode,
    encode,
    hour_of,
    plan,
)
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
        try:
            ids = self.settings.scheduling_request_ids()
        except IdSourceError as exc:
            raise CronofyAPIError(f"{exc} Nothing was queried; its state is kept.") from exc
        if not ids:
            self.logger.info(
                "Skipping scheduling_requests: no scheduling_request_ids, "
                "scheduling_request_ids_file or scheduling_request_ids_sql is set (Cronofy "
                "has no endpoint that lists them)."
            )
            return
        try:
            yield from self._query(ids)
        except CronofyAPIError as exc:
            fallback = self.settings.scheduler_secret == self.settings.client_secret
            refused = APP_REFUSED in self.services.report.failed_accounts.values()
            if not (exc.status == 401 and fallback and refused):
                raise
            # Cronofy refused the application's credentials already this run, and its
            # client_secret is this query's Bearer too: one cause, said once (above)
            self.logger.warning(
                "scheduling_requests not read: Cronofy refused client_secret as its Bearer "
                "too (scheduler_client_secret is not set), as it refused the application's "
                "credentials above. Its state is kept; fixing client_secret fixes both."
            )

    def _query(self, ids: list[str]) -> t.Iterable[dict]:
        """Query the ids due this run (open ones, settled ones at their hour, never-queried
        ones), stalest first, within the run's budget; emit the new or changed."""
        state = self.stream_state
        tracked = dict(decode(item) for item in state.get(STATE_KEY) or [])
        incremental = STATE_KEY in state
        # Cronofy's clock, which the cycles are kept by (when no answer of this run has told
        # it yet, one unauthenticated request asks)
        now = self.client.clock()
        due = plan(ids, tracked, hour_of(now), self.settings.scheduling_settled_hours)
        budget = self.services.budget()
        found = emitted = queried = 0
        missing: list[str] = []
        url = self.client.url("/v1/scheduling_requests/query")
        try:
            for start in range(0, len(due), QUERY_BATCH_SIZE):
                batch = due[start : start + QUERY_BATCH_SIZE]
                if budget.limited and not budget.allows(1):
                    self.logger.warning(
                        "%d due scheduling request ids wait for the next run, which queries them "
                        "first: the run's budget was spent.",
                        len(due) - start,
                    )
                    break
                reply = self._post(url, batch)
                queried += len(batch)
                returned = {}
                for item in reply.body.get("scheduling_requests") or ():
                    request = item.get("scheduling_request") or {}
                    if (request_id := request.get("scheduling_request_id")) in batch:
                        returned[request_id] = request
                found += len(returned)
                for request_id in batch:
                    before = tracked.get(request_id)
                    if (request := returned.get(request_id)) is None:
                        missing.append(request_id)
                        tracked[request_id] = after_query(before, None, "", reply.server_time)
                        continue
                    self._undeclared.check(request)
                    digest = fingerprint(request, 16)
                    after = after_query(before, request, digest, reply.server_time)
                    if incremental and before is not None and before.fingerprint == digest:
                        tracked[request_id] = after
                        continue
                    yield {**request, "last_modified": format_time(reply.server_time)}
                    emitted += 1
                    tracked[request_id] = after  # only once the record is out
        finally:  # once, not per record (100,000 ids); a failed batch keeps the earlier ones
            state[STATE_KEY] = _encode(tracked, ids)
        if missing:
            self.logger.warning(
                "%d of %d scheduling request ids queried were not found by Cronofy (unknown, "
                "or not in this Organizational Unit); they are asked less and less often.",
                len(missing),
                queried,
            )
            self.logger.debug("Scheduling request ids not found: %s", ", ".join(missing))
        tiers = Counter(tracked[i].tier if i in tracked else OPEN for i in ids)
        self.logger.info(
            "Queried %d of %d tracked scheduling request ids (%d open, %d settled, %d not "
            "found; settled ones once in %d h) in %d requests; %d found, %d new or changed.",
            queried,
            len(ids),
            tiers[OPEN],
            tiers[SETTLED],
            tiers[GONE],
            self.settings.scheduling_settled_hours,
            -(-queried // QUERY_BATCH_SIZE),
            found,
            emitted,
        )
        self.services.report.tally(self.name).records += emitted
        state[STATE_KEY] = _encode(tracked, ids)  # ids no longer tracked drop out

    def _post(self, url: str, batch: list[str]) -> t.Any:
        try:
            return self.client.post(
                url, {"scheduling_request_ids": batch}, credential=self._credential
            )
        except CredentialError as exc:
            advice = ADVICE.get(exc.status or 0, "")
            if exc.status == 401 and self.settings.scheduler_secret == self.settings.client_secret:
                advice = FALLBACK_REFUSED
            raise CronofyAPIError(f"{exc}. {advice}", status=exc.status) from exc


def _encode(tracked: dict[str, Tracked], ids: list[str]) -> list[str]:
    """A list, not a dict: Meltano replaces lists in state wholesale, so removed ids go."""
    return [encode(i, tracked[i]) for i in ids if i in tracked]
