"""Channel provisioning: exactly one open push-notification channel per configured account,
to ``notification_url``, each filed in the change log under its checked account."""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tap_cronofy.changelog import CHANGE
from tap_cronofy.errors import CronofyAPIError
from tap_cronofy.report import plural

if t.TYPE_CHECKING:
    from tap_cronofy.accounts import Accounts
    from tap_cronofy.budget import RunBudget
    from tap_cronofy.changelog import ChangeLog
    from tap_cronofy.client import CronofyClient


@dataclass
class Provisioning:
    """What a provisioning run did, by account."""

    kept: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)  # the log's channel was closed
    moved: list[str] = field(default_factory=list)  # ours, to an earlier notification_url
    closed: int = 0  # extra channels to notification_url
    others: int = 0  # channels to other URLs (the product's own): left alone
    failed: dict[str, str] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)  # left out by the request budget

    def summary(self) -> str:
        line = (
            f"Channels: {len(self.kept)} kept, {len(self.created)} created, "
            f"{len(self.recreated)} recreated (closed since), "
            f"{len(self.moved)} moved from an earlier notification_url (the old one closed), "
            f"{self.closed} duplicate(s) closed, {plural(self.others, 'channel')} to other "
            "URLs left alone, "
            f"{plural(len(self.failed), 'failed account')}"
        )
        if self.waiting:
            line += (
                f", {plural(len(self.waiting), 'account')} left for the next run by "
                "max_requests_per_run"
            )
        return line + "."


def plan(
    open_channels: t.Sequence[dict], callback_url: str, logged: t.Collection[str]
) -> tuple[dict | None, list[dict], int]:
    """Of an account's open channels: the one to keep (to ``callback_url``, one already in
    the change log first), those to close (other channels to ``callback_url``), and how
    many go elsewhere (never touched)."""
    ours = [c for c in open_channels if c.get("callback_url") == callback_url]
    ours.sort(key=lambda c: (c.get("channel_id") not in logged, str(c.get("channel_id"))))
    return (ours[0] if ours else None), ours[1:], len(open_channels) - len(ours)


def provision(
    callback_url: str,
    client: CronofyClient,
    accounts: Accounts,
    log: ChangeLog,
    budget: RunBudget,
    logger: logging.Logger,
    workers: int = 1,
) -> Provisioning:
    """Per account, ``workers`` accounts at a time: check the token is the account's own (a
    channel made with another account's token would file its notifications under the wrong
    id), list its channels, keep one to ``callback_url``, close the others to it, create
    one when none is open."""
    done = Provisioning()
    logged = log.channels()
    lock = threading.Lock()

    def one(account_id: str) -> None:
        if not budget.admit(account_id):
            with lock:
                done.waiting.append(account_id)
            return
        try:
            outcome = _provision_one(account_id, callback_url, client, accounts, log, logged)
            with lock:
                done.others += outcome.others
                done.closed += outcome.closed
                getattr(done, outcome.kind).append(account_id)
            if outcome.kind != "kept":
                logger.info("Account %s: channel %s opened.", account_id, outcome.channel_id)
        except CronofyAPIError as exc:
            failure, _ = accounts.fail(account_id, exc)
            with lock:
                done.failed[account_id] = str(failure)
            logger.error("Account %s: channel not provisioned: %s", account_id, failure)
        finally:
            budget.finished(account_id)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, accounts.ids()))
    for name in ("kept", "created", "recreated", "moved", "waiting"):
        getattr(done, name).sort()
    return done


@dataclass
class _Outcome:
    kind: str  # "kept", "created", "recreated" or "moved"
    channel_id: str
    closed: int
    others: int


def _provision_one(
    account_id: str,
    callback_url: str,
    client: CronofyClient,
    accounts: Accounts,
    log: ChangeLog,
    logged: dict[str, str],
) -> _Outcome:
    credential = accounts.credential(account_id)
    accounts.verify(account_id, None)  # one /v1/userinfo: whose token this is
    url = client.url("/v1/channels")
    listed = client.get(url, credential=credential).body.get("channels") or []
    keep, extra, others = plan(listed, callback_url, logged)
    had = [c for c, a in logged.items() if a == account_id]
    # ours (filed in the change log) but to an earlier notification_url: closed, not left
    # open where nothing listens any more; channels no log filed are the product's
    moved = [c for c in listed if c.get("channel_id") in had and c not in (keep, *extra)]
    for channel in extra:
        client.delete(f"{url}/{channel['channel_id']}", credential=credential)
        log.remove_channel(str(channel["channel_id"]))
    kind = "kept"
    if keep is None:
        keep = (
            client.post(url, {"callback_url": callback_url}, credential=credential).body.get(
                "channel"
            )
            or {}
        )
        kind = "moved" if moved else "recreated" if had else "created"
    # only once the account has its channel to callback_url: the old ones are closed
    for channel in moved:
        client.delete(f"{url}/{channel['channel_id']}", credential=credential)
        log.remove_channel(str(channel["channel_id"]))
    others -= len(moved)
    channel_id = str(keep["channel_id"])
    for stale in had:
        if stale != channel_id:
            log.remove_channel(stale)
    log.add_channel(channel_id, account_id, callback_url, time.time())
    if kind != "kept":
        # A change between the channel's opening and its filing here was notified to a
        # channel the receiver did not know yet: the next run queries the account anyway.
        log.record(channel_id, CHANGE, None, time.time())
    return _Outcome(kind, channel_id, len(extra), others)
