"""``tap-cronofy-check``: every account's credentials tried (one request each, within
``requests_per_minute``), progress as it goes, then a table of what to fix."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import typing as t

from tap_cronofy.check.probe import Result, application_line, probe, unnamed
from tap_cronofy.redact import install_log_redaction
from tap_cronofy.report import plural

LOGGER = logging.getLogger("tap_cronofy.check")
PROGRESS_SECONDS = 5.0  # a progress line at most this often (and at the end)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tap-cronofy-check",
        description="Try every account's credentials with one request each (a token "
        "refresh, or the token's userinfo) and print a table: account, ok or what is wrong, "
        "and what to do. Exit code 0 when every account is ok, 1 otherwise. Under Meltano: "
        "`meltano invoke tap-cronofy:check`.",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="the tap's config file (repeatable), or ENV for TAP_CRONOFY_* variables "
        "(as Meltano passes them)",
    )
    parser.add_argument(
        "--identity",
        action="store_true",
        help="also ask each account with refresh credentials whose token it is (one more "
        "request each): finds tokens filed under the wrong account_id, which a refresh "
        "alone does not (every run checks it anyway, and loads nothing from such a token)",
    )
    return parser


def table(results: t.Sequence[Result]) -> list[str]:
    """The rows, failures first (in account order), each account once."""
    ordered = sorted(results, key=lambda r: (r.ok, r.account_id))
    width = max([len("account"), *(len(r.account_id) for r in ordered)])
    lines = [f"{'account':<{width}}  {'ok':<3}  what is wrong, and what to do"]
    for r in ordered:
        lines.append(f"{r.account_id:<{width}}  {'yes' if r.ok else 'NO':<3}  {r.why}")
    return lines


def summary(results: t.Sequence[Result], app: str | None) -> str:
    if app:
        return app
    if not results:
        return "No account to check: set `accounts`, `accounts_file` or `access_token`."
    if bad := sum(not r.ok for r in results):
        return f"{plural(len(results), 'account')} checked: {bad} need attention (above)."
    return f"{plural(len(results), 'account')} checked: all ok."


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("singer_sdk").setLevel(logging.WARNING)  # not a line per setting
    install_log_redaction()
    args = parser().parse_args(argv)
    from tap_cronofy.tap import load

    tap = load(args.config or ["ENV"])
    accounts, client = tap.accounts, tap.client
    ids = accounts.ids()
    results: list[Result] = []
    if not ids and not tap.settings.has_account_list and tap.settings.accounts:
        results.append(unnamed(tap.report.failed_accounts))
    last = time.monotonic()
    for done, account_id in enumerate(ids, 1):
        results.append(probe(account_id, accounts, client, identity=args.identity))
        if time.monotonic() - last >= PROGRESS_SECONDS or done == len(ids):
            failed = sum(not r.ok for r in results)
            LOGGER.info("checked %d/%d accounts (%d need attention)", done, len(ids), failed)
            last = time.monotonic()
    print("\n".join(table(results)))
    print(summary(results, application_line(accounts)))
    sys.exit(0 if results and all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
