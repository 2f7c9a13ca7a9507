"""tap-cronofy: wiring of settings, client, accounts and streams; the CLI's run and exit code."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import os
import re
import sys
import time
import typing as t
from functools import cached_property

import click
from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities
from singer_sdk.logging import StructuredFormatter

from tap_cronofy.accounts import APP_REFUSED, Accounts
from tap_cronofy.budget import RunBudget
from tap_cronofy.client import CronofyClient
from tap_cronofy.errors import CronofyAPIError
from tap_cronofy.output import StateFlushingWriter, checkpoint_due
from tap_cronofy.progress import Progress
from tap_cronofy.quota import open_shared_quota
from tap_cronofy.redact import SECRETS, install_log_redaction
from tap_cronofy.report import RunReport, quota_warning
from tap_cronofy.settings import (
    CONFIG_SCHEMA,
    Settings,
    check,
    secrets_of_input,
    selection_errors,
    unknown_settings,
)
from tap_cronofy.statecodec import expand, newer_format
from tap_cronofy.streams import (
    AccountsStream,
    CalendarsStream,
    FreeBusyStream,
    SchedulingRequestsStream,
)
from tap_cronofy.streams.base import Services

if t.TYPE_CHECKING:
    from singer_sdk import Stream


HELP = """Extract Cronofy calendar data as Singer messages.

\b
Streams: free_busy (each account's busy, tentative and free periods, incremental),
calendars (each account's calendars), accounts (who each account is), scheduling_requests
(by id, when they change). Set one of access_token, accounts or accounts_file; with
refresh tokens, also client_id and client_secret. All settings, described:
tap-cronofy --about --format=markdown."""

EPILOG = """\b
Example config.json:
  {"data_center": "us", "client_id": "...", "client_secret": "...",
   "accounts_file": "accounts.json", "tzid": "Europe/London"}
Run: tap-cronofy --config config.json > out.jsonl  (the last STATE line is the state
to pass back with --state next time)
Check every account's credentials first: tap-cronofy-check --config config.json
(under Meltano: meltano invoke tap-cronofy:check).
Sibling commands: tap-cronofy-push receive|channels|prune (change-driven sync),
tap-cronofy-shards reshard (scale-out). Docs: README.md, the manual in docs/."""


class TapCronofy(Tap):
    """Cronofy calendar data for a warehouse: free_busy (each account's busy, tentative and
    free periods, incremental, Cronofy's window kept current), calendars (each account's
    calendars, read daily), accounts (who each account is: name, email, zone, profiles) and
    scheduling_requests (by id, emitted when they change)."""

    name = "tap-cronofy"
    message_writer_class = StateFlushingWriter
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)  # the SDK appends its settings to it
    # No BATCH: the SDK writes a batch's STATE before the target has loaded its file.
    capabilities: t.ClassVar[list] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        # Mask secrets before the SDK validates (and may log) the config.
        install_log_redaction()
        for secret in secrets_of_input(kwargs.get("config"), os.environ):
            SECRETS.add(secret)
        self.report = RunReport()
        super().__init__(*args, **kwargs)
        for secret in secrets_of_input(dict(self.config), {}):
            SECRETS.add(secret)
        known = self.config_jsonschema["properties"]
        strict = self.config.get("strict_settings", True) is not False
        unknown = unknown_settings(self.config, known, ignored=not strict)
        if unknown and strict:
            raise ConfigValidationError(
                "Config validation failed",
                errors=[
                    *unknown,
                    "Nothing was requested: fix the names (or, to allow extra keys, set "
                    "`strict_settings` false).",
                ],
            )
        for line in unknown:
            self.logger.warning(line)
        if kwargs.get("validate_config", True) and (errors := check(self.config, os.environ)):
            raise ConfigValidationError("Config validation failed", errors=errors)
        self.state.setdefault("bookmarks", {})  # every STATE carries a bookmarks object
        # As written, accounts' entries share values (statecodec): spelled out here.
        expand(t.cast(dict, self.state))

    def load_state(self, state: dict[str, t.Any]) -> None:
        """The SDK's, after the state's format is checked: one this release cannot read
        stops the run before any request, in one line."""
        if (newer := newer_format(state)) is not None:
            raise ConfigValidationError("State cannot be read", errors=[newer])
        super().load_state(state)

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_config(self.config)

    @cached_property
    def client(self) -> CronofyClient:
        return CronofyClient(
            self.settings,
            user_agent=f"tap-cronofy/{self.plugin_version}",
            logger=self.logger,
            shared=open_shared_quota(self.settings),
        )

    @cached_property
    def accounts(self) -> Accounts:
        return Accounts(self.settings, self.client, self.logger, self.report)

    @cached_property
    def budget(self) -> RunBudget:
        settings = self.settings
        return RunBudget(
            settings.max_requests_per_run,
            settings.max_run_minutes,
            spent=lambda: self.client.request_count,
        )

    def discover_streams(self) -> list[Stream]:
        services = Services(
            settings=lambda: self.settings,
            client=lambda: self.client,
            accounts=lambda: self.accounts,
            report=self.report,
            budget=lambda: self.budget,
            checkpoint=self.checkpoint,
        )
        return [
            FreeBusyStream(self, services),
            CalendarsStream(self, services),
            AccountsStream(self, services),
            SchedulingRequestsStream(self, services),
        ]

    @property
    def streams(self) -> dict[str, Stream]:
        """The SDK's streams (sorted by name), free_busy moved first: its answers embed
        each account's userinfo, which checks the token's identity and is the accounts
        stream's record, so the streams after it ask Cronofy less."""
        streams = super().streams  # the SDK's own cached dict: reordered in place, once
        if "free_busy" in streams and next(iter(streams)) != "free_busy":
            for name in [n for n in streams if n != "free_busy"]:
                streams[name] = streams.pop(name)  # to the end, after free_busy
        return streams

    def checkpoint(self, done: int, total: int) -> None:
        """A STATE message when the ``done``-th of a stream's ``total`` accounts completes
        a part of the run (``checkpoint_due``)."""
        if checkpoint_due(done, total):
            self.message_writer.write_state_now(self.state)  # type: ignore[attr-defined]
        client = self.client
        waited = client.limiter.waited_seconds
        if line := self.progress.line(done, total, client.request_count, waited):
            self.logger.info(line)

    @cached_property
    def progress(self) -> Progress:
        return Progress()

    def run(self) -> int:
        """Sync the selected streams; the exit code: 0, or 1 when anything failed."""
        selected = {name for name, stream in self.streams.items() if stream.selected}
        if errors := selection_errors(self.settings, selected):
            for error in errors:
                self.logger.error(error)
            self.last_words(
                f"Config validation failed: {' '.join(errors)} Nothing was requested from Cronofy."
            )
            return 1
        code = 0
        fatal: CronofyAPIError | None = None
        started = time.monotonic()
        self.message_writer.hold_states = True  # type: ignore[attr-defined]  # ours: see output
        try:
            self.sync_all()
        except CronofyAPIError as exc:
            # Bookmarks only ever cover emitted records: the state as it stands is safe to
            # save, and a rerun continues from it without a gap.
            self.state_writer.write_state(self.state)
            self.logger.error("%s", exc)
            fatal, code = exc, 1
        except BrokenPipeError:
            self.logger.error(
                "The reader of the tap's output closed it early (broken pipe): stopped. What "
                "the reader did not receive, state included, is read again by the next run."
            )
            return 1
        finally:
            self.message_writer.finish()  # type: ignore[attr-defined]  # StateFlushingWriter
            if "client" in self.__dict__ and (shared := self.client.shared) is not None:
                shared.close()  # its connections, one per worker thread
        if "client" in self.__dict__:  # a sync that reached Cronofy
            for line in self.report.summary_lines(
                self.client.limiter.waited_seconds, self.client.request_count
            ):
                self.logger.info(line)
            settings = self.settings
            if warning := quota_warning(
                requests=self.client.request_count,
                accounts=max(len(settings.accounts), 1),  # as configured: no lookup here
                per_minute=min(settings.requests_per_minute, 60 * settings.requests_per_second),
                waited=self.client.limiter.waited_seconds,
                elapsed=time.monotonic() - started,
            ):
                self.logger.warning(warning)
            now = dt.datetime.now(dt.timezone.utc)
            if "budget" in self.__dict__ and (waited := self.budget.summary(now)):
                self.logger.warning(waited)
        refused = "accounts" in self.__dict__ and self.accounts.application.refused
        if failed := self.report.failed_accounts:
            for account_id, reason in sorted(failed.items()):
                if not (refused and reason == APP_REFUSED):  # one cause: said once, below
                    self.logger.error("FAILED account %s: %s", account_id, reason)
            others = (
                "The other accounts were synced and their state saved"
                if len(failed) < len(self.settings.accounts)
                else "No account was synced"
            )
            first = sorted(failed)[0]
            more = f" ({len(failed) - 1} more listed above)" if len(failed) > 1 else ""
            if refused:
                if fatal is not None:  # scheduling_requests: said before the one cause
                    self.logger.error("Stopped: %s", fatal)
                self.last_words(  # one cause, said once, last
                    f"{len(failed)} account(s) failed: "
                    + ", ".join(sorted(failed)[:3])
                    + (", ..." if len(failed) > 3 else "")
                    + f". {APP_REFUSED}"
                )
                return 1
            self.last_words(
                f"{len(failed)} account(s) failed: {', '.join(sorted(failed))}. {others}. "
                f"{first}: {failed[first]}{more}"
            )
            code = 1
        if fatal is not None:
            self.last_words(f"Stopped: {fatal}")
        return code

    def last_words(self, message: str) -> None:
        last_words(self.logger, message)

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with help that says what this tap does and how to start."""
        command = super().get_singer_command()
        command.help = HELP
        command.epilog = EPILOG
        return command

    @classmethod
    def invoke(  # type: ignore[override]  # the SDK's own signature, minus its return
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """The command line: as the SDK's, but the exit code reports failed accounts."""
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        cls.print_version(print_fn=cls.logger.info)
        try:
            tap = cls(
                config=config.config if config is not None else None,
                state=None if state is None else json.loads(state.read()),
                catalog=None if catalog is None else json.loads(catalog.read()),
                parse_env_config=bool(config is not None and config.parse_env),
                validate_config=True,
            )
        except ConfigValidationError as exc:
            # Each error on its own line, then one line that says them all: Meltano's
            # `config test` shows only the last line (and the SDK's own would carry the
            # whole schema in its structured log).
            errors = [readable(error) for error in exc.errors]
            for error in errors:
                cls.logger.error("%s", error)
            last_words(cls.logger, "Config validation failed: " + " ".join(errors))
            sys.exit(1)
        sys.exit(tap.run())


_NOT_MATCHING = re.compile(r"^'(?P<value>\s*)' does not match .* in config\['(?P<name>[^']+)'\]$")


def load(configs: list[str]) -> TapCronofy:
    """The tap for a sibling command (tap-cronofy-push, tap-cronofy-check), its settings
    checked as a run's are (``ENV``: from TAP_CRONOFY_* variables, as Meltano passes them);
    invalid settings exit 1 with the readable message, before any request."""
    files = [c for c in configs if c != "ENV"]
    try:
        return TapCronofy(
            config=files or None,
            parse_env_config="ENV" in configs or not files,
            validate_config=True,
        )
    except ConfigValidationError as exc:
        logging.getLogger("tap_cronofy").error("%s", " ".join(readable(e) for e in exc.errors))
        sys.exit(1)


def last_words(logger: logging.Logger, message: str) -> None:
    """A run's closing error, logged; and when the logs are JSON (Meltano's
    SINGER_SDK_LOG_CONFIG), also as the plain last line of stderr: the one line `meltano
    config test` shows, so a person reads the message, not a JSON record."""
    logger.error("%s", message)
    handlers = [*logging.getLogger().handlers, *logger.handlers]
    if any(isinstance(h.formatter, StructuredFormatter) for h in handlers):
        for handler in handlers:
            handler.flush()
        sys.stderr.write(SECRETS.redact(message) + "\n")
        sys.stderr.flush()


def readable(error: str) -> str:
    """An SDK validation error, said plainly when a setting is empty or blank."""
    if (found := _NOT_MATCHING.match(error)) is not None:
        name = found["name"]
        return (
            f"`{name}` is set but empty: give it a value, or remove it (`meltano config "
            f"unset tap-cronofy {name}`, or drop it from the config file)."
        )
    return error


if __name__ == "__main__":
    TapCronofy.cli()
