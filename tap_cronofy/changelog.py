"""The change log between the receiver and the tap: which accounts Cronofy said changed.

One schema, in SQLite (one file, the default) or PostgreSQL (a receiver on several hosts).
Notifications are numbered in commit order (the counter row is locked until the insert
commits), so a reader that has seen number n has seen every notification numbered below n:
a position in Singer state says exactly what a run has consumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urlsplit

if t.TYPE_CHECKING:
    from collections.abc import Iterator

# Types that say an account's data may have changed (anything else is not recorded).
CHANGE = "change"
DISCONNECTED = "profile_disconnected"
SYNCED = "profile_initial_sync_completed"
RECORDED = (CHANGE, DISCONNECTED, SYNCED)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cronofy_channels (
        channel_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        callback_url TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cronofy_notifications (
        seq BIGINT PRIMARY KEY,
        account_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        changes_since TEXT,
        received_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS cronofy_notifications_account ON cronofy_notifications "
    "(account_id, seq)",
    "CREATE INDEX IF NOT EXISTS cronofy_notifications_received ON cronofy_notifications "
    "(received_at)",
    """CREATE TABLE IF NOT EXISTS cronofy_log_meta (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL)""",
    # The SHA-256 of each notification body recorded, with the number it was recorded
    # under: until a run has taken that number up, the same body again (Cronofy's retry, a
    # replay) records nothing more; after, it is a new notification (lifecycle bodies carry
    # no id or time, so every later one is byte-identical). Pruned with the notifications.
    """CREATE TABLE IF NOT EXISTS cronofy_seen (
        body_hash TEXT PRIMARY KEY,
        received_at DOUBLE PRECISION NOT NULL,
        seq BIGINT)""",
    "CREATE INDEX IF NOT EXISTS cronofy_seen_received ON cronofy_seen (received_at)",
)
LAST_SEQ = "last_seq"  # the last number handed out
PRUNED_THROUGH = "pruned_through"  # every notification numbered up to this was pruned
LOG_ID = "log_id"  # drawn when the log is created: a new or replaced log numbers from 1 again
TAKEN = "taken_through"  # the highest number a run's snapshot has taken up


POSTGRES_SCHEMES = ("postgres", "postgresql")


def is_postgres(target: str) -> bool:
    return urlsplit(target).scheme.lower() in POSTGRES_SCHEMES


def sqlite_path(target: str) -> str:
    """The file of a SQLite log: a path, or sqlite:///relative.db and sqlite:////absolute.db
    (as SQLAlchemy spells them)."""
    return target[len("sqlite:///") :] if urlsplit(target).scheme.lower() == "sqlite" else target


def describe(target: str) -> str:
    """Where a change log is, without a password."""
    if is_postgres(target):
        parts = urlsplit(target)
        return f"PostgreSQL {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    return f"SQLite {sqlite_path(target)}"


@dataclass
class Pending:
    """An account's notifications after some position: the last number of each type."""

    last: dict[str, int] = field(default_factory=dict)
    count: int = 0
    changes_since: str | None = None  # the earliest a change notification carried

    def earliest(self, changes_since: str | None) -> None:
        if changes_since and (self.changes_since is None or changes_since < self.changes_since):
            self.changes_since = changes_since

    def since(self, position: int) -> list[str]:
        """The types notified after ``position``."""
        return sorted(kind for kind, seq in self.last.items() if seq > position)


class ChangeLog:
    """Opened from the ``change_log`` setting: a file path or ``sqlite:///path`` (SQLite),
    or a ``postgresql://`` URL. Every method is one short transaction, so the log can be
    shared by threads and processes; SQLite keeps one connection per thread (closing one
    would checkpoint the WAL on every notification), PostgreSQL one per transaction."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.postgres = is_postgres(target)
        self.path = sqlite_path(target)
        self._marker = "%s" if self.postgres else "?"
        self.log_id = 0  # read when the tables are made sure of, below
        self._local = threading.local()
        for attempt in range(3):  # PostgreSQL: two processes creating the tables at once
            try:
                self._create()
                break
            except Exception:
                if attempt == 2:
                    raise

    def _create(self) -> None:
        with self._transaction() as cursor:
            for statement in SCHEMA:
                cursor.execute(statement)
            self._add_seen_seq(cursor)
            initial = {
                LAST_SEQ: 0,
                PRUNED_THROUGH: 0,
                LOG_ID: 1 + secrets.randbelow(2**31 - 1),
                TAKEN: 0,
            }
            for name, value in initial.items():
                cursor.execute(
                    self._sql(
                        "INSERT INTO cronofy_log_meta (name, value) VALUES (?, ?) "
                        "ON CONFLICT (name) DO NOTHING"
                    ),
                    (name, value),
                )
            self.log_id = self._meta(cursor, LOG_ID)

    def _add_seen_seq(self, cursor: t.Any) -> None:
        """A log made by an earlier release lacks ``cronofy_seen.seq``: added (its rows,
        without one, count as taken up: the same body again is a new notification)."""
        if self.postgres:
            cursor.execute("ALTER TABLE cronofy_seen ADD COLUMN IF NOT EXISTS seq BIGINT")
            return
        cursor.execute("PRAGMA table_info(cronofy_seen)")
        if "seq" not in {row[1] for row in cursor.fetchall()}:
            cursor.execute("ALTER TABLE cronofy_seen ADD COLUMN seq BIGINT")

    def describe(self) -> str:
        return describe(self.target)

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self._marker)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[t.Any]:
        if self.postgres:
            import psycopg  # only for a PostgreSQL log: pip install 'tap-cronofy[postgres]'

            with psycopg.connect(self.target) as pg, pg.cursor() as pg_cursor:
                yield pg_cursor  # committed when the block ends, rolled back on an error
            return
        connection = getattr(self._local, "sqlite", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=True
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")  # a 2xx answer means on disk
            self._local.sqlite = connection
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            connection.rollback()
            raise
        connection.commit()

    # Channels: which account each of the receiver's channels belongs to

    def add_channel(self, channel_id: str, account_id: str, callback_url: str, at: float) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO cronofy_channels (channel_id, account_id, callback_url, "
                    "created_at) VALUES (?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET "
                    "account_id = excluded.account_id, callback_url = excluded.callback_url"
                ),
                (channel_id, account_id, callback_url, at),
            )

    def remove_channel(self, channel_id: str) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                self._sql("DELETE FROM cronofy_channels WHERE channel_id = ?"), (channel_id,)
            )

    def channels(self) -> dict[str, str]:
        """channel_id -> account_id."""
        with self._transaction() as cursor:
            cursor.execute("SELECT channel_id, account_id FROM cronofy_channels")
            return dict(cursor.fetchall())

    def account_of(self, channel_id: str) -> str | None:
        with self._transaction() as cursor:
            cursor.execute(
                self._sql("SELECT account_id FROM cronofy_channels WHERE channel_id = ?"),
                (channel_id,),
            )
            row = cursor.fetchone()
            return row[0] if row else None

    # Notifications

    def record(
        self,
        channel_id: str,
        kind: str,
        changes_since: str | None,
        at: float,
        body: bytes | None = None,
    ) -> tuple[str, int] | None:
        """Record a notification of one of the receiver's channels: its account and number
        (0: this ``body`` was recorded before, a retry or a replay, and nothing more is), or
        None when the channel is not known (nothing is recorded then)."""
        with self._transaction() as cursor:
            cursor.execute(
                self._sql("SELECT account_id FROM cronofy_channels WHERE channel_id = ?"),
                (channel_id,),
            )
            row = cursor.fetchone()
            if row is None:
                return None
            account_id = row[0]
            digest = hashlib.sha256(body).hexdigest() if body is not None else None
            if digest is not None:
                cursor.execute(
                    self._sql("SELECT seq FROM cronofy_seen WHERE body_hash = ?"), (digest,)
                )
                seen = cursor.fetchone()
                if seen is not None and seen[0] is not None and seen[0] > self._meta(cursor, TAKEN):
                    return account_id, 0  # recorded, and no run has taken it up yet
            # Locks the counter row until commit: numbers are handed out in commit order.
            cursor.execute(
                self._sql("UPDATE cronofy_log_meta SET value = value + 1 WHERE name = ?"),
                (LAST_SEQ,),
            )
            seq = self._meta(cursor, LAST_SEQ)
            cursor.execute(
                self._sql(
                    "INSERT INTO cronofy_notifications (seq, account_id, channel_id, kind, "
                    "changes_since, received_at) VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (seq, account_id, channel_id, kind, changes_since, at),
            )
            if digest is not None:
                cursor.execute(
                    self._sql(
                        "INSERT INTO cronofy_seen (body_hash, received_at, seq) VALUES (?, ?, ?) "
                        "ON CONFLICT (body_hash) DO UPDATE SET received_at = excluded.received_at, "
                        "seq = excluded.seq"
                    ),
                    (digest, at, seq),
                )
            return account_id, seq

    def position(self) -> int:
        """The number of the last notification recorded (0: none yet)."""
        with self._transaction() as cursor:
            return self._meta(cursor, LAST_SEQ)

    def pruned_through(self) -> int:
        with self._transaction() as cursor:
            return self._meta(cursor, PRUNED_THROUGH)

    def _meta(self, cursor: t.Any, name: str) -> int:
        cursor.execute(self._sql("SELECT value FROM cronofy_log_meta WHERE name = ?"), (name,))
        return int(cursor.fetchone()[0])

    def snapshot(
        self, after: int, accounts: t.Sequence[str] | None = None
    ) -> tuple[int, int, dict[str, Pending]]:
        """In one transaction: the last number, the pruned-through number, and each
        account's notifications numbered after ``after`` and up to the last number (their
        earliest ``changes_since`` may belong to one the account already served: a wider
        query, never a narrower one); only ``accounts``' when given (a shard's)."""
        with self._transaction() as cursor:
            last = self._meta(cursor, LAST_SEQ)
            pruned = self._meta(cursor, PRUNED_THROUGH)
            # Taken up from here on: the same body again is a new notification. (Another
            # shard's accounts are marked too: recording their body again costs nothing, as
            # an account with notifications pending is queried once however many it has.)
            cursor.execute(
                self._sql("UPDATE cronofy_log_meta SET value = ? WHERE name = ? AND value < ?"),
                (last, TAKEN, last),
            )
            where = "seq > ? AND seq <= ?"
            params: list[t.Any] = [after, last]
            if accounts is not None:  # a shard's: its accounts' rows only, by the index
                if self.postgres:
                    where += " AND account_id = ANY(?)"
                    params.append(list(accounts))
                else:
                    where += " AND account_id IN (SELECT value FROM json_each(?))"
                    params.append(json.dumps(list(accounts)))
            cursor.execute(
                self._sql(
                    "SELECT account_id, kind, MAX(seq), COUNT(*), MIN(changes_since) "
                    f"FROM cronofy_notifications WHERE {where} GROUP BY account_id, kind"
                ),
                params,
            )
            pending: dict[str, Pending] = {}
            for account_id, kind, seq, count, since in cursor.fetchall():
                entry = pending.setdefault(account_id, Pending())
                entry.last[kind] = int(seq)
                entry.count += int(count)
                entry.earliest(since)
            return last, pruned, pending

    def prune(self, before: float) -> int:
        """Delete notifications (and the hashes of bodies) received before ``before``
        (epoch seconds); how many notifications. A replay older than the retention is
        recorded again, which costs one query of its account."""
        with self._transaction() as cursor:
            cursor.execute(self._sql("DELETE FROM cronofy_seen WHERE received_at < ?"), (before,))
            cursor.execute(
                self._sql(
                    "SELECT MAX(seq), COUNT(*) FROM cronofy_notifications WHERE received_at < ?"
                ),
                (before,),
            )
            top, count = cursor.fetchone()
            if not count:
                return 0
            cursor.execute(
                self._sql("DELETE FROM cronofy_notifications WHERE seq <= ?"), (int(top),)
            )
            deleted = int(cursor.rowcount)
            cursor.execute(
                self._sql("UPDATE cronofy_log_meta SET value = ? WHERE name = ? AND value < ?"),
                (int(top), PRUNED_THROUGH, int(top)),
            )
            return deleted
