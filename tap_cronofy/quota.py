"""One Cronofy quota for every process of an application: a sliding window kept in
PostgreSQL and timed by the database's clock, so shards on several hosts share it."""

from __future__ import annotations

import contextlib
import threading
import time
import typing as t

from tap_cronofy.changelog import describe as describe_target
from tap_cronofy.errors import SharedQuotaError
from tap_cronofy.redact import SECRETS

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_cronofy.settings import Settings

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cronofy_quota (
        id BIGSERIAL PRIMARY KEY,
        bucket TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        done_at TIMESTAMPTZ)""",
    "CREATE INDEX IF NOT EXISTS cronofy_quota_bucket ON cronofy_quota (bucket, done_at)",
)
STALE = 600  # seconds: an unanswered request this old belongs to a process that died


class SharedQuota:
    """At most ``limit`` requests in any ``window`` seconds across every process using
    ``bucket`` (the Cronofy application). As in the in-process limiter, a request counts
    from the moment it is allowed until its answer is back, and then for ``window`` more;
    the window is widened by ``slack`` seconds for the time a request takes to arrive."""

    def __init__(
        self,
        url: str,
        bucket: str,
        limit: int,
        window: float = 60.0,
        slack: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.bucket = bucket
        self.limit = limit
        self.window = window + slack
        self._sleep = sleep
        self._local = threading.local()
        self._opened: list[tuple[threading.Thread, t.Any]] = []  # closed by close()
        self._opened_lock = threading.Lock()
        self.waited_seconds = 0.0
        with self._connection() as pg, pg.transaction():
            pg.execute("SELECT pg_advisory_xact_lock(hashtext('cronofy_quota_schema'))")
            for statement in SCHEMA:
                pg.execute(statement)

    def _connection(self) -> t.Any:
        """This thread's connection (psycopg's are not for sharing between threads)."""
        pg = getattr(self._local, "pg", None)
        if pg is None or pg.closed:
            import psycopg  # pip install 'tap-cronofy[postgres]'

            with self._opened_lock:  # a finished worker's connection goes with it
                ended = [pg for thread, pg in self._opened if not thread.is_alive()]
                self._opened = [(th, pg) for th, pg in self._opened if th.is_alive()]
            for old in ended:
                with contextlib.suppress(Exception):
                    old.close()
            pg = self._local.pg = psycopg.connect(self.url, autocommit=True)
            with self._opened_lock:
                self._opened.append((threading.current_thread(), pg))
        return contextlib.nullcontext(pg)

    def close(self) -> None:
        """Close every thread's connection (at the end of the run)."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for _, pg in opened:
            with contextlib.suppress(Exception):
                pg.close()

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Wait for a place in the shared window; it counts until the block ends."""
        slot = self._acquire()
        try:
            yield
        finally:
            with self._connection() as pg:
                pg.execute(
                    "UPDATE cronofy_quota SET done_at = clock_timestamp() WHERE id = %s", (slot,)
                )

    def _acquire(self) -> int:
        while True:
            with self._connection() as pg, pg.transaction():
                pg.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.bucket,))
                pg.execute(
                    "DELETE FROM cronofy_quota WHERE bucket = %s AND (done_at < clock_timestamp()"
                    " - make_interval(secs => %s) OR (done_at IS NULL AND started_at < "
                    "clock_timestamp() - make_interval(secs => %s)))",
                    (self.bucket, self.window, STALE),
                )
                counted, oldest = pg.execute(
                    "SELECT count(*), extract(epoch FROM min(done_at) + make_interval(secs => %s)"
                    " - clock_timestamp()) FROM cronofy_quota WHERE bucket = %s",
                    (self.window, self.bucket),
                ).fetchone()
                if counted < self.limit:
                    return int(
                        pg.execute(
                            "INSERT INTO cronofy_quota (bucket, started_at) VALUES "
                            "(%s, clock_timestamp()) RETURNING id",
                            (self.bucket,),
                        ).fetchone()[0]
                    )
            # full: until the oldest answered request leaves the window (all in flight: soon)
            wait = max(0.05, float(oldest)) if oldest is not None else 0.2
            self.waited_seconds += wait
            self._sleep(wait)


def open_shared_quota(settings: Settings) -> SharedQuota | None:
    """The quota shared with the other processes of the application, when configured;
    a database that cannot be reached fails the run before any request, naming the setting."""
    if not settings.shared_quota:
        return None
    try:
        return SharedQuota(
            settings.shared_quota, settings.client_id or "default", settings.requests_per_minute
        )
    except Exception as exc:  # psycopg's errors, or psycopg missing
        msg = (
            f"`shared_quota` ({describe_target(settings.shared_quota)}) cannot be used: "
            f"{type(exc).__name__}: {SECRETS.redact(str(exc))}. Nothing was requested; check the "
            "URL and that PostgreSQL is reachable (pip install 'tap-cronofy[postgres]')."
        )
        raise SharedQuotaError(msg) from exc
