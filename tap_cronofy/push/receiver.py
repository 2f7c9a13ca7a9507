"""The push-notification receiver: checks each POST's signature, files it under the account
its channel belongs to in the change log, and answers at once (Falcon app, waitress server)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import typing as t

import falcon

from tap_cronofy.changelog import RECORDED, ChangeLog
from tap_cronofy.push.signature import HEADER, verify

MAX_BODY = 64 * 1024  # Cronofy's notifications are a few hundred bytes
MAX_FIELD = 256  # a channel id, a type, a changes_since: far longer is not Cronofy's
LOG_TEXT = 120  # request-derived text in a log line: escaped, and cut to this
LOGGER = logging.getLogger("tap_cronofy.push.receiver")
# What waitress enforces before the app sees a request: a body over MAX_BODY is refused
# (413) from its Content-Length or as its chunks arrive, never spooled to disk; headers are
# small; idle connections close; more connections than Cronofy needs are accepted.
SERVER_LIMITS = {
    "max_request_body_size": MAX_BODY,
    "max_request_header_size": 16 * 1024,
    "channel_timeout": 30,
    "connection_limit": 1000,
    "cleanup_interval": 10,
}


def loggable(text: object, limit: int = LOG_TEXT) -> str:
    """Request-derived text for a log line: control characters and quotes escaped (no
    forged line), cut to ``limit`` characters with the rest counted (no flooding)."""
    value = str(text)
    cut = value[:limit]
    escaped = json.dumps(cut, ensure_ascii=True)[1:-1]
    return escaped + (f"...({len(value) - limit} more)" if len(value) > limit else "")


def parse(raw: bytes) -> tuple[str, str, str | None] | None:
    """(type, channel_id, changes_since) of a notification as Cronofy sends it; None for
    anything else (not JSON, nested too deep, wrong shapes or sizes)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    notification, channel = body.get("notification"), body.get("channel")
    if not isinstance(notification, dict) or not isinstance(channel, (dict, type(None))):
        return None
    kind = notification.get("type")
    channel_id = (channel or {}).get("channel_id", "")
    changes_since = notification.get("changes_since")
    if not isinstance(kind, str) or not isinstance(channel_id, str):
        return None
    if changes_since is not None and not isinstance(changes_since, str):
        return None
    if max(len(kind), len(channel_id), len(changes_since or "")) > MAX_FIELD:
        return None
    return kind, channel_id, changes_since


class Notifications:
    """POST (any path): one notification. 401 when the signature does not match (nothing
    is recorded); 503 when the change log cannot be written (Cronofy retries); else 200."""

    def __init__(
        self,
        log: ChangeLog,
        secrets: t.Sequence[str],
        clock: t.Callable[[], float] = time.time,
        logger: logging.Logger = LOGGER,
    ) -> None:
        self.log = log
        self.secrets = [s for s in secrets if s]
        self.clock = clock
        self.logger = logger
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def on_post(self, req: falcon.Request, resp: falcon.Response, **_: t.Any) -> None:
        length = req.content_length or 0
        if length > MAX_BODY:
            self._count("too_large")
            raise falcon.HTTPContentTooLarge(title="notification too large")
        raw = req.bounded_stream.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            self._count("too_large")
            raise falcon.HTTPContentTooLarge(title="notification too large")
        if not verify(raw, req.get_header(HEADER), self.secrets):
            self._count("bad_signature")
            self.logger.warning(
                "Refused a POST to %s from %s: its %s header is %s (nothing recorded).",
                loggable(req.path),
                loggable(req.remote_addr),
                HEADER,
                "missing" if not req.get_header(HEADER) else "not a signature of its body",
            )
            raise falcon.HTTPUnauthorized(title="signature does not match")
        parsed = parse(raw)
        if parsed is None:  # signed, but not what Cronofy sends: retrying would not help
            self._count("malformed")
            self.logger.warning(
                "A signed notification (%d bytes) was not the JSON Cronofy sends: "
                "acknowledged, not recorded.",
                len(raw),
            )
            resp.media = {"ok": True}
            return
        kind, channel_id, changes_since = parsed
        if kind not in RECORDED:
            self._count(kind or "untyped")
            self.logger.info(
                "Notification of type %s (channel %s): acknowledged.",
                loggable(kind),
                loggable(channel_id),
            )
            resp.media = {"ok": True}
            return
        try:
            filed = self.log.record(channel_id, kind, changes_since, self.clock(), raw)
        except Exception as exc:  # any database failure: Cronofy is asked to retry
            self._count("log_unavailable")
            self.logger.error(
                "Could not record a %s notification of channel %s in %s (%s): answered 503 "
                "so that Cronofy retries.",
                kind,
                loggable(channel_id),
                self.log.describe(),
                type(exc).__name__,
            )
            raise falcon.HTTPServiceUnavailable(title="change log unavailable") from exc
        if filed is None:
            self._count("unknown_channel")
            self.logger.warning(
                "Notification for channel %s, which no configured account has (closed, or "
                "made elsewhere): acknowledged, not recorded. `tap-cronofy-push channels` "
                "closes strays.",
                loggable(channel_id),
            )
        elif filed[1] == 0:
            self._count("duplicate")
            self.logger.info(
                "A %s notification for account %s already recorded (a retry or a replay): "
                "acknowledged, nothing recorded.",
                kind,
                filed[0],
            )
        else:
            self._count(kind)
            account_id, seq = filed
            self.logger.info("Notification %d: %s for account %s.", seq, kind, account_id)
        resp.media = {"ok": True}


class Health:
    """GET /healthz: the change log answers, and its last position."""

    def __init__(self, log: ChangeLog) -> None:
        self.log = log

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            resp.media = {"ok": True, "position": self.log.position()}
        except Exception as exc:
            raise falcon.HTTPServiceUnavailable(title="change log unavailable") from exc


class Pruner:
    """Deletes notifications older than the retention, at start and then hourly."""

    def __init__(self, log: ChangeLog, retention_days: float, logger: logging.Logger = LOGGER):
        self.log = log
        self.retention = retention_days * 86400
        self.logger = logger
        self.stopped = threading.Event()

    def once(self, now: float | None = None) -> int:
        deleted = self.log.prune((time.time() if now is None else now) - self.retention)
        if deleted:
            self.logger.info("Pruned %d notification(s) older than the retention.", deleted)
        return deleted

    def run(self, every: float = 3600) -> None:
        while not self.stopped.is_set():
            try:
                self.once()
            except Exception as exc:
                self.logger.error("Pruning the change log failed (%s).", type(exc).__name__)
            self.stopped.wait(every)


def serve(server: t.Any) -> None:
    """Run a waitress server until it is closed (from a signal handler or another thread)."""
    with contextlib.suppress(KeyboardInterrupt, OSError):  # closed under its select loop
        server.run()


def make_app(
    log: ChangeLog, secrets: t.Sequence[str], **kwargs: t.Any
) -> tuple[falcon.App, Notifications]:
    """The WSGI app, and its notifications resource (whose counts say what it received)."""
    app = falcon.App()
    notifications = Notifications(log, secrets, **kwargs)
    app.add_route("/healthz", Health(log))
    app.add_sink(lambda req, resp, **kw: _sink(notifications, req, resp), prefix="/")
    return app, notifications


def _sink(notifications: Notifications, req: falcon.Request, resp: falcon.Response) -> None:
    if req.method != "POST":
        raise falcon.HTTPMethodNotAllowed(["POST"])
    notifications.on_post(req, resp)
