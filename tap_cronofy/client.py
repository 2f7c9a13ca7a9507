"""The one owner of HTTP to Cronofy: sessions, rate limit, retries, decoding, errors, host pin."""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import random
import threading
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import urlsplit

import msgspec.json
import requests

from tap_cronofy.backpressure import FLOOR, Backpressure
from tap_cronofy.errors import (
    CredentialError,
    CronofyAPIError,
    ExpiredPageError,
    ForeignHostError,
    ParameterError,
)
from tap_cronofy.ratelimit import SlidingWindowLimiter
from tap_cronofy.redact import SECRETS

if t.TYPE_CHECKING:
    from tap_cronofy.settings import Settings

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_decoder = msgspec.json.Decoder()
LONG_WAIT_SECONDS = 5.0  # a rate-limit pause this long is logged, so a run never looks stuck


class RetriableError(Exception):
    """A failure worth another try: 429, 5xx, or a body that did not arrive whole."""

    def __init__(self, message: str, response: requests.Response | None = None) -> None:
        super().__init__(message)
        self.response = response


RETRIABLE = (
    RetriableError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class SharedWindow(t.Protocol):
    """A request window shared with the other processes of the application."""

    def request(self) -> t.ContextManager[None]:
        """Wait for a place; it counts until the block ends."""
        ...

    def close(self) -> None:
        """Let go of what it holds (at the end of the run)."""
        ...


class Credential(t.Protocol):
    """Whose Bearer token a request carries (an account, or the Scheduler's secret)."""

    label: str

    def bearer(self, client: CronofyClient) -> str:
        """The token to send now (refreshed first when it is known to be stale)."""
        ...

    def rejected(self, token: str, client: CronofyClient) -> None:
        """After a 401 for ``token``: refresh, or raise ``CredentialError``."""
        ...


@dataclass(frozen=True)
class Reply:
    """A decoded Cronofy answer: the JSON object, and when Cronofy sent it by its clock."""

    status: int
    body: dict
    server_time: datetime
    path: str


def format_time(moment: datetime) -> str:
    """Cronofy's time format: UTC, whole seconds, ``Z``."""
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def same_origin(url: str, base_url: str) -> bool:
    """True when ``url`` has the scheme, host and port of ``base_url``."""
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def header_time(response: requests.Response) -> datetime | None:
    header = response.headers.get("Date")
    if header:
        try:
            return email.utils.parsedate_to_datetime(header).astimezone(timezone.utc)
        except (TypeError, ValueError):
            return None
    return None


class CronofyClient:
    """Sends requests to one API base for every stream and thread of a run."""

    def __init__(
        self,
        settings: Settings,
        *,
        user_agent: str,
        logger: logging.Logger,
        shared: SharedWindow | None = None,
    ) -> None:
        self.base_url = settings.api_base
        self.settings = settings
        self.user_agent = user_agent
        self.logger = logger
        minutes = settings.max_run_minutes
        self.pressure = Backpressure(
            settings.backoff_factor_seconds,
            deadline=time.monotonic() + minutes * 60 if minutes > 0 else None,
            longest_wait=settings.max_retry_wait_seconds,
        )
        self.limiter = SlidingWindowLimiter(
            [(settings.requests_per_second, 1.0), (settings.requests_per_minute, 60.0)],
            margin=0.02,
            slack=0.1,
            on_pause=self._pausing,
            long_pause=LONG_WAIT_SECONDS,
        )
        self.shared = shared  # the application's quota, shared with other processes
        self._count_lock = threading.Lock()
        self._local = threading.local()
        self._clock_offset: float | None = None
        self.request_count = 0

    # Clock

    def server_now(self) -> datetime | None:
        """Cronofy's clock, from the last ``Date`` header seen (None before any answer)."""
        if self._clock_offset is None:
            return None
        return datetime.fromtimestamp(time.time() + self._clock_offset, timezone.utc)

    def clock(self) -> datetime:
        """Cronofy's clock, asked with one unauthenticated request to the API base when no
        answer of this run has told it yet (change-driven mode decides by it before any
        account is queried)."""
        if (now := self.server_now()) is not None:
            return now
        with contextlib.suppress(requests.RequestException):
            self._send("GET", self.url("/"), None, None, None)
        return self.server_now() or datetime.now(timezone.utc)

    def _pausing(self, seconds: float) -> None:
        """A long rate-limit pause, as it begins: a run never looks stuck."""
        self.logger.info(
            "Pausing %.0f s for the client-side rate limit (%d requests/minute, %d/second).",
            seconds,
            self.settings.requests_per_minute,
            self.settings.requests_per_second,
        )

    # Requests

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def get(self, url: str, *, params: dict | None = None, credential: Credential) -> Reply:
        return self._with_retries(self._authorized, "GET", url, params, None, credential)

    def post(self, url: str, body: dict, *, credential: Credential) -> Reply:
        return self._with_retries(self._authorized, "POST", url, None, body, credential)

    def delete(self, url: str, *, credential: Credential) -> Reply:
        return self._with_retries(self._authorized, "DELETE", url, None, None, credential)

    def token_request(self, body: dict) -> Reply:
        """POST to ``/oauth/token`` (no Bearer); 4xx answers come back as replies."""
        url = self.url("/oauth/token")
        return self._with_retries(self._plain, "POST", url, None, body, None)

    def _with_retries(self, send: t.Callable[..., Reply], *args: t.Any) -> Reply:
        """``send`` until it answers: a 429 is not a failed try (the quota is shared with
        your product, so most are not the tap's doing): every thread pauses for the window,
        the rate drops, and the wait is paid from the run's time; 5xx and network errors
        are retried ``max_retries`` times in all."""
        settings = self.settings
        tries = 0
        quota_waited = 0.0
        waits = self._waits()
        next(waits)
        while True:
            try:
                reply = send(*args)
            except RETRIABLE as exc:
                response = getattr(exc, "response", None)
                if response is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
                    wait = self.pressure.refused(retry_after_seconds(exc))
                    if not self.pressure.may_wait(wait, quota_waited):
                        msg = (
                            f"Cronofy kept refusing requests for the quota (429) for "
                            f"{quota_waited:.0f} s, and the run's time is spent: "
                            f"{describe(exc)}. Your product may be using the whole quota; "
                            "the next run catches up (state was kept, nothing is lost)."
                        )
                        raise CronofyAPIError(msg, status=429) from exc
                    quota_waited += wait
                    self.limiter.pause(wait)
                    self._log_quota_wait(wait, exc, self.limiter.slow_down(FLOOR))
                    continue
                tries += 1
                if tries >= settings.max_retries:
                    msg = (
                        f"Giving up after {settings.max_retries} tries: {describe(exc)}. "
                        "Cronofy or the network kept failing; run the tap again later (state "
                        "was kept, nothing is lost)."
                    )
                    raise CronofyAPIError(
                        msg, status=response.status_code if response is not None else None
                    ) from exc
                wait = waits.send(exc)
                self._log_retry({"wait": wait, "tries": tries, "exception": exc})
                time.sleep(wait)
                continue
            self.limiter.speed_up(self.pressure.accepted())
            return reply

    def _log_quota_wait(self, wait: float, exc: BaseException, limits: list[int]) -> None:
        self.logger.warning(
            "Cronofy's quota is spent (429%s): every request waits %.1f s, and the tap "
            "slows to %d requests/second and %d/minute (half what it sent, at least a tenth of "
            "its limits), then speeds up again gradually.",
            ", Retry-After" if retry_after_seconds(exc) is not None else ", no Retry-After",
            wait,
            *limits,
        )

    def _authorized(
        self, method: str, url: str, params: dict | None, body: dict | None, cred: Credential
    ) -> Reply:
        if not same_origin(url, self.base_url):
            msg = (
                f"Refusing to send the {cred.label} credentials to {urlsplit(url).netloc!r}: "
                f"only {urlsplit(self.base_url).netloc!r} (the configured API base) may "
                "receive them."
            )
            raise ForeignHostError(msg)
        token = cred.bearer(self)
        response = self._send(method, url, params, body, token)
        if response.status_code == HTTPStatus.UNAUTHORIZED:
            cred.rejected(token, self)  # refreshes once, or raises
            token = cred.bearer(self)
            response = self._send(method, url, params, body, token)
            if response.status_code == HTTPStatus.UNAUTHORIZED:
                cred.rejected(token, self)  # a refreshed token refused: raises
        return self._decode(response, accept_client_errors=False)

    def _plain(
        self, method: str, url: str, params: dict | None, body: dict | None, _: None
    ) -> Reply:
        if not same_origin(url, self.base_url):
            msg = f"Refusing to post credentials to {urlsplit(url).netloc!r}."
            raise ForeignHostError(msg)
        return self._decode(self._send(method, url, params, body, None), accept_client_errors=True)

    def _session(self) -> requests.Session:
        """One session per thread: pages of several accounts are fetched in parallel."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self.user_agent
            # The environment (proxies, CA bundle) read once here, as requests would read it
            # for this host, rather than on every request: it costs more than the request's
            # own work at fleet scale. (Every URL the tap sends to is on the API base.)
            session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                session.verify = bundle
            session.trust_env = False
            self._local.session = session
        return session

    def _send(
        self, method: str, url: str, params: dict | None, body: dict | None, token: str | None
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        shared = self.shared.request() if self.shared else contextlib.nullcontext()
        with self.limiter.request(), shared:  # each counts until the answer is back
            with self._count_lock:
                self.request_count += 1
            started = time.monotonic()
            response = self._session().request(
                method,
                url,
                params=params,
                json=body,
                headers=headers,
                timeout=self.settings.request_timeout_seconds,
                allow_redirects=False,
            )
        if (moment := header_time(response)) is not None:
            self._clock_offset = moment.timestamp() - time.time()
        self.logger.debug(
            "%s %s -> %s in %.3f s",
            method,
            urlsplit(url).path,
            response.status_code,
            time.monotonic() - started,
        )
        return response

    def _decode(self, response: requests.Response, *, accept_client_errors: bool) -> Reply:
        status = response.status_code
        path = urlsplit(response.url).path
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= 500:
            raise RetriableError(error_line(response), response)
        if status >= 300 and not (accept_client_errors and 400 <= status < 500):
            raise_for_status(response)
        try:
            body = _decoder.decode(response.content) if response.content else {}
        except msgspec.DecodeError as exc:
            msg = (
                f"{status} response for path {path} was not valid JSON "
                f"({len(response.content)} bytes): truncated or garbled"
            )
            raise RetriableError(msg, response) from exc
        if not isinstance(body, dict):
            msg = f"Unexpected JSON for path {path}: not an object"
            raise RetriableError(msg, response)
        moment = header_time(response) or datetime.now(timezone.utc).replace(microsecond=0)
        return Reply(status, body, moment, path)

    # Retries

    def _waits(self) -> t.Generator[float, t.Any, None]:
        """Before each retry of a 5xx or network error: ``Retry-After`` when Cronofy sends
        it (capped), else exponential with jitter."""
        factor = self.settings.backoff_factor_seconds
        cap = self.settings.max_retry_wait_seconds
        attempt = 0
        exception = yield  # type: ignore[misc]  # primed with next()
        while True:
            wait = retry_after_seconds(exception)
            if wait is None:
                wait = factor * (2**attempt) * (1 + random.random() / 10)
            attempt += 1
            exception = yield min(wait, cap)

    def _log_retry(self, details: t.Mapping[str, t.Any]) -> None:
        self.logger.warning(
            "Retrying in %.2f s (try %d of %d failed): %s",
            details.get("wait") or 0.0,
            details.get("tries") or 0,
            self.settings.max_retries,
            describe(details.get("exception")),
        )


def raise_for_status(response: requests.Response) -> t.NoReturn:
    """The error for a non-retriable, non-success answer."""
    status = response.status_code
    path = urlsplit(response.url).path
    if 300 <= status < 400:
        location = urlsplit(response.headers.get("Location", "")).netloc or "?"
        msg = (
            f"{status} redirect to {location!r} for path {path}: not followed, so that "
            "credentials never leave the configured API host. Check api_url/data_center."
        )
        raise ForeignHostError(msg, status=status)
    if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.LOCKED):
        raise CredentialError(f"{status} {response.reason} for path {path}", status=status)
    if status == HTTPStatus.NOT_FOUND and "/pages/" in path:
        raise ExpiredPageError(f"404 for page URL {path}: the page token expired", status=404)
    if status == HTTPStatus.UNPROCESSABLE_ENTITY:
        named = field_names(response)
        raise ParameterError(
            f"422 Unprocessable Entity for path {path}: Cronofy rejected the request "
            f"parameters: {describe_field_errors(response)}. {field_advice(named)}",
            fields=named,
        )
    if status == HTTPStatus.PAYMENT_REQUIRED:
        raise CronofyAPIError(
            f"402 Payment Required for path {path}: the Cronofy plan of this application "
            "does not include this feature; upgrade the plan, or deselect the stream that "
            "needs it.",
            status=status,
        )
    raise CronofyAPIError(
        f"{status} {response.reason} for path {path}: {short_body(response)}", status=status
    )


def error_line(response: requests.Response) -> str:
    """Status and path only: bodies and URLs may echo credentials."""
    kind = "Client" if response.status_code < 500 else "Server"
    return (
        f"{response.status_code} {kind} Error: {response.reason} "
        f"for path: {urlsplit(response.url).path}"
    )


def describe(exc: BaseException | None) -> str:
    """A secret-free description: status and path for HTTP errors, the type for others."""
    if isinstance(exc, RetriableError):
        return SECRETS.redact(str(exc))
    request = getattr(exc, "request", None)
    path = urlsplit(request.url).path if request is not None and request.url else "?"
    return f"{type(exc).__name__} for path {path}"


def retry_after_seconds(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        now = header_time(response) or datetime.now(timezone.utc)
        return max(0.0, (moment - now).total_seconds())


def field_names(response: requests.Response) -> set[str]:
    """The parameters a 422 answer names."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return set()
    return {str(name) for name in errors} if isinstance(errors, dict) else set()


# The settings behind each free_busy parameter Cronofy may name in a 422.
SETTING_OF = {
    "tzid": "tzid",
    "from": "start_date",
    "to": "end_date",
    "start_date": "start_date",
    "end_date": "end_date",
    "calendar_ids": "calendar_ids",
    "calendar_ids[]": "calendar_ids",
    "last_modified": "lookback_seconds",
    "include_managed": "include_managed",
    "localized_times": "localized_times",
    "scheduling_request_ids": "scheduling_request_ids",
    "callback_url": "notification_url",
}


def field_advice(named: t.Collection[str]) -> str:
    """What to check, for the fields Cronofy named: the settings behind them, or, for a
    field no setting sets, that the tap sent something Cronofy refuses (report it)."""
    settings = sorted({SETTING_OF[n] for n in named if n in SETTING_OF})
    others = sorted(n for n in named if n not in SETTING_OF)
    advice = []
    if settings:
        advice.append("Check the setting" + ("s " if len(settings) > 1 else " "))
        advice[-1] += ", ".join(f"`{name}`" for name in settings) + "."
    if others or not named:
        which = ", ".join(f"`{n}`" for n in others) if others else "no field"
        advice.append(
            f"Cronofy named {which}, which no setting of the tap sets: please report it, "
            "with this message."
        )
    return " ".join(advice)


def describe_field_errors(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or {}
    except (ValueError, AttributeError):
        return short_body(response)
    parts = []
    for name, problems in errors.items():
        descriptions = [
            str(problem.get("description") or problem.get("key"))
            for problem in problems or []
            if isinstance(problem, dict)
        ]
        parts.append(f"{name}: {', '.join(descriptions) or 'invalid'}")
    return SECRETS.redact("; ".join(parts)) or "no details given"


def short_body(response: requests.Response, limit: int = 300) -> str:
    if not response.content:
        return "empty body"
    return SECRETS.redact(response.text)[:limit]  # redacted whole: a cut secret is no match
