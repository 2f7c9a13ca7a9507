"""Scheduling request ids from the product's own database: one read-only SQL query."""

from __future__ import annotations

from tap_cronofy.changelog import describe
from tap_cronofy.redact import SECRETS

TIMEOUT_MS = 60_000  # the query's time limit: a slow one must not stall the run


class IdSourceError(Exception):
    """The ids could not be read: says which setting, where, and why (never the password)."""


def query_ids(url: str, sql: str) -> list[str]:
    """The first column of every row ``sql`` returns, as ids (blank ones skipped), read in a
    read-only transaction, so the tap cannot change the product's data."""
    try:
        import psycopg  # pip install 'tap-cronofy[postgres]'
    except ImportError as exc:
        msg = (
            "`scheduling_request_ids_sql` needs psycopg: pip install 'tap-cronofy[postgres]' "
            "(under Meltano, in the plugin's pip_url)."
        )
        raise IdSourceError(msg) from exc
    try:
        options = f"-c default_transaction_read_only=on -c statement_timeout={TIMEOUT_MS}"
        with psycopg.connect(url, connect_timeout=10, options=options) as connection:
            connection.read_only = True
            # the extended protocol: one statement, so no COMMIT can end the read-only
            # transaction and no second statement can write
            rows = connection.execute(sql, binary=True).fetchall()
    except psycopg.Error as exc:
        msg = (
            f"`scheduling_request_ids_sql` failed on {describe(url)} "
            f"(`scheduling_request_ids_url`): {type(exc).__name__}: "
            f"{SECRETS.redact(str(exc)).strip()[:300]}"
        )
        raise IdSourceError(msg) from exc
    return [text for row in rows if row and row[0] is not None and (text := str(row[0]).strip())]
