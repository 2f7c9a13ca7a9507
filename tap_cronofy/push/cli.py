"""``tap-cronofy-push``: the receiver of Cronofy's push notifications, channel provisioning
and pruning, configured by the tap's own settings (a config file, or ``ENV``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import typing as t

from tap_cronofy.changelog import ChangeLog
from tap_cronofy.redact import install_log_redaction
from tap_cronofy.report import plural

if t.TYPE_CHECKING:
    from tap_cronofy.tap import TapCronofy

LOGGER = logging.getLogger("tap_cronofy.push")


def fail(message: str) -> t.NoReturn:
    LOGGER.error("%s", message)
    sys.exit(1)


def change_log_of(tap: TapCronofy) -> ChangeLog:
    target = tap.settings.change_log
    if not target:
        fail("`change_log` is not set: set it to a file path (SQLite) or a postgresql:// URL.")
    try:
        return ChangeLog(target)
    except Exception as exc:
        fail(f"The change log cannot be opened: {type(exc).__name__}: {exc}")


def receive(tap: TapCronofy, host: str, port: int, threads: int) -> None:
    try:
        import waitress

        from tap_cronofy.push.receiver import SERVER_LIMITS, Pruner, make_app, serve
    except ImportError as exc:
        fail(
            f"`tap-cronofy-push receive` needs the `push` extra ({exc.name} is missing): "
            "pip install 'tap-cronofy[push]' (under Meltano, pip_url: 'tap-cronofy[push]')."
        )

    settings = tap.settings
    if not settings.client_secret:
        fail("`client_secret` is not set: notifications are signed with it.")
    log = change_log_of(tap)
    app, _ = make_app(log, [settings.client_secret])
    server = waitress.create_server(app, host=host, port=port, threads=threads, **SERVER_LIMITS)
    pruner = Pruner(log, settings.change_log_retention_days)
    threading.Thread(target=pruner.run, daemon=True, name="prune").start()
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    LOGGER.info(
        "Receiving Cronofy notifications on http://%s:%s (change log: %s).",
        host,
        server.effective_port,
        log.describe(),
    )
    try:
        serve(server)
    finally:
        pruner.stopped.set()
        LOGGER.info("Receiver stopped.")


def channels(tap: TapCronofy) -> int:
    from tap_cronofy.push.channels import provision

    settings = tap.settings
    if not settings.notification_url:
        fail("`notification_url` is not set: the public HTTPS URL of the receiver.")
    log = change_log_of(tap)
    done = provision(
        settings.notification_url,
        tap.client,
        tap.accounts,
        log,
        tap.budget,
        LOGGER,
        workers=settings.max_parallel_accounts,
    )
    LOGGER.info("%s %s to Cronofy.", done.summary(), plural(tap.client.request_count, "request"))
    return 1 if done.failed else 0


def prune(tap: TapCronofy) -> int:
    log = change_log_of(tap)
    cutoff = time.time() - tap.settings.change_log_retention_days * 86400
    LOGGER.info("Pruned %d notification(s).", log.prune(cutoff))
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand each for receive, channels and prune."""
    found = argparse.ArgumentParser(prog="tap-cronofy-push", description=__doc__)
    commands = found.add_subparsers(dest="command", required=True)
    for name, text in (
        ("receive", "run the receiver (an HTTP server: put it behind your HTTPS proxy)"),
        ("channels", "open, keep or close one channel per account to notification_url"),
        ("prune", "delete notifications older than change_log_retention_days"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--config",
            action="append",
            default=[],
            help="the tap's config file (repeatable), or ENV for TAP_CRONOFY_* variables",
        )
        if name == "receive":
            command.add_argument(
                "--host",
                default=os.environ.get("TAP_CRONOFY_PUSH_HOST", "127.0.0.1"),
                help="the address to listen on (default: $TAP_CRONOFY_PUSH_HOST or 127.0.0.1)",
            )
            command.add_argument(
                "--port",
                type=int,
                default=int(os.environ.get("TAP_CRONOFY_PUSH_PORT", "8080")),
                help="the port to listen on (default: $TAP_CRONOFY_PUSH_PORT or 8080)",
            )
            command.add_argument("--threads", type=int, default=8)
    return found


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    install_log_redaction()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    from tap_cronofy.tap import load

    tap = load(args.config)
    if args.command == "receive":
        receive(tap, args.host, args.port, args.threads)
        sys.exit(0)
    sys.exit(channels(tap) if args.command == "channels" else prune(tap))


if __name__ == "__main__":
    main()
