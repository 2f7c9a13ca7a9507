"""Base stream for the Cronofy API: URLs, auth, rate limits, retries and error messages."""

from __future__ import annotations

import email.utils
import random
import threading
import typing as t
from datetime import datetime, timezone
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlsplit

import backoff
import msgspec.json
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.pagination import BaseHATEOASPaginator

from tap_cronofy.auth import BearerAuth, same_origin
from tap_cronofy.errors import CronofyAPIError, ExpiredPageError, ForeignHostError
from tap_cronofy.redact import SECRETS
from tap_cronofy.settings import api_base_url

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context, RequestFunc

    from tap_cronofy.tap import TapCronofy

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_FACTOR = 1.0
DEFAULT_MAX_RETRY_WAIT = 60.0
DEFAULT_TIMEOUT = 60.0

RETRIABLE_EXCEPTIONS = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

_json_decoder = msgspec.json.Decoder()


def format_time(moment: datetime) -> str:
    """Cronofy's time format: UTC, whole seconds, ``Z``."""
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def server_time(response: requests.Response) -> datetime:
    """When Cronofy answered, by Cronofy's own clock (``Date`` header), else by ours."""
    header = response.headers.get("Date")
    if header:
        try:
            return email.utils.parsedate_to_datetime(header).astimezone(timezone.utc)
        except (TypeError, ValueError):
            pass
    return datetime.now(timezone.utc).replace(microsecond=0)


class NextPagePaginator(BaseHATEOASPaginator):
    """Follows ``pages.next_page``, an absolute URL that is absent on the last page."""

    def get_next_url(self, response: requests.Response) -> str | None:
        pages = response.cronofy_json.get("pages") or {}  # type: ignore[attr-defined]
        return pages.get("next_page")

    def continue_if_empty(self, response: requests.Response) -> bool:
        return bool(self.get_next_url(response))


class CronofyStream(RESTStream):
    """Shared HTTP behaviour of the Cronofy streams."""

    _tap: TapCronofy
    # The SDK's per-request metric lines carry only path and status; keep them.
    _LOG_REQUEST_METRIC_URLS = False

    @property
    def url_base(self) -> str:
        return api_base_url(self.config)

    @cached_property
    def _thread_state(self) -> threading.local:
        return threading.local()

    @property
    def requests_session(self) -> requests.Session:
        """One session per thread: pages of several accounts are fetched in parallel."""
        session = getattr(self._thread_state, "session", None)
        if session is None:
            session = requests.Session()
            self._thread_state.session = session
        return session

    def get_new_paginator(self) -> NextPagePaginator:
        return NextPagePaginator()

    def get_http_request(self, *, page):  # noqa: ANN001, ANN201
        request = super().get_http_request(page=page)
        if page.next_page_token:
            # next_page is absolute and complete: sending the first query again would
            # duplicate every parameter on it.
            request.url = page.next_page_token.geturl()
            request.params = {}
        return request

    def build_prepared_request(self, *args: t.Any, **kwargs: t.Any) -> requests.PreparedRequest:
        request = requests.Request(*args, **kwargs)
        request.headers.setdefault("User-Agent", self.user_agent)
        return request.prepare()

    @cached_property
    def user_agent(self) -> str:
        return f"tap-cronofy/{self._tap.plugin_version}"

    # Subclasses say whose credentials a request carries and how to word failures.

    def auth_for(self, context: Context | None) -> BearerAuth:
        raise NotImplementedError

    def credential_error(
        self, context: Context | None, status: int, detail: str
    ) -> CronofyAPIError:
        """The error for a 401/403/423 answer (stream specific advice)."""
        raise NotImplementedError

    # Sending

    @property
    def timeout(self) -> float:  # type: ignore[override]
        return float(self.config.get("request_timeout_seconds") or DEFAULT_TIMEOUT)

    def _send(self, prepared: requests.PreparedRequest) -> requests.Response:
        self._tap.rate_limiter.acquire()
        return self.requests_session.send(prepared, timeout=self.timeout, allow_redirects=False)

    def post_json(self, url: str, body: dict) -> requests.Response:
        """POST without a Bearer token (the token endpoint), retried like any request."""
        if not same_origin(url, self.url_base):
            msg = f"Refusing to post credentials to {urlsplit(url).netloc!r}."
            raise ForeignHostError(msg)

        def attempt(prepared: requests.PreparedRequest) -> requests.Response:
            response = self._send(prepared)
            if response.status_code == HTTPStatus.TOO_MANY_REQUESTS or response.status_code >= 500:
                raise RetriableAPIError(self.response_error_message(response), response)
            return response

        prepared = self.build_prepared_request(method="POST", url=url, json=body)
        return self.request_decorator(attempt)(prepared)

    def _request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        auth = self.auth_for(context)
        ensure_fresh = getattr(auth, "ensure_fresh", None)
        if ensure_fresh:
            ensure_fresh(self.post_json)
        token = auth.token
        response = self._send(auth(prepared_request))
        if response.status_code == HTTPStatus.UNAUTHORIZED and hasattr(auth, "handle_rejection"):
            auth.handle_rejection(token, self.post_json)  # refreshes once or raises
            response = self._send(auth(prepared_request))
            if response.status_code == HTTPStatus.UNAUTHORIZED:
                auth.handle_rejection(auth.token, self.post_json)  # raises: refreshed token refused
        self._write_request_duration_log(
            endpoint=self.path or "", response=response, context=context, extra_tags=None
        )
        self.validate_response(response, context)
        try:
            response.cronofy_json = _json_decoder.decode(response.content)  # type: ignore[attr-defined]
        except msgspec.DecodeError as exc:
            msg = (
                f"{response.status_code} response for path {urlsplit(response.url).path} "
                f"was not valid JSON ({len(response.content)} bytes): truncated or garbled"
            )
            raise RetriableAPIError(msg, response) from exc
        if not isinstance(response.cronofy_json, dict):  # type: ignore[attr-defined]
            msg = f"Unexpected JSON for path {urlsplit(response.url).path}: not an object"
            raise RetriableAPIError(msg, response)
        return response

    def iter_responses(self, context: Context | None) -> Iterator[requests.Response]:
        """Every page of one query, each a validated response with ``cronofy_json``."""
        paginator = self.get_new_paginator()
        send = self.request_decorator(self._request)
        while not paginator.finished:
            prepared = self._prepare_request(context=context, page=paginator)
            response = send(prepared, context)
            yield response
            paginator.advance(response)

    # Errors

    def validate_response(  # type: ignore[override]
        self, response: requests.Response, context: Context | None = None
    ) -> None:
        status = response.status_code
        if status < 300:
            return
        path = urlsplit(response.url).path
        if status in self.extra_retry_statuses or status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        if 300 <= status < 400:
            location = urlsplit(response.headers.get("Location", "")).netloc or "?"
            msg = (
                f"{status} redirect to {location!r} for path {path}: not followed, so that "
                "credentials never leave the configured API host. Check api_url/data_center."
            )
            raise ForeignHostError(msg, status=status)
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.LOCKED):
            raise self.credential_error(
                context, status, f"{status} {response.reason} for path {path}"
            )
        if status == HTTPStatus.NOT_FOUND and "/pages/" in path:
            msg = f"404 for page URL {path}: the page token expired"
            raise ExpiredPageError(msg, status=status)
        if status == HTTPStatus.UNPROCESSABLE_ENTITY:
            raise CronofyAPIError(
                f"422 Unprocessable Entity for path {path}: Cronofy rejected the request "
                f"parameters: {describe_field_errors(response)}. Check the tap settings "
                "(tzid, start_date, end_date, calendar_ids).",
                status=status,
            )
        raise CronofyAPIError(
            f"{status} {response.reason} for path {path}: {short_body(response)}", status=status
        )

    def response_error_message(self, response: requests.Response) -> str:
        """Status and path only: bodies and URLs may echo credentials."""
        kind = "Client" if response.status_code < 500 else "Server"
        return (
            f"{response.status_code} {kind} Error: {response.reason} "
            f"for path: {urlsplit(response.url).path}"
        )

    # Retries

    def backoff_max_tries(self) -> int:
        return int(self.config.get("max_retries") or DEFAULT_MAX_RETRIES)

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """``Retry-After`` when Cronofy sends it (capped), else exponential with jitter."""
        factor = float(self.config.get("backoff_factor_seconds", DEFAULT_BACKOFF_FACTOR))
        cap = float(self.config.get("max_retry_wait_seconds", DEFAULT_MAX_RETRY_WAIT))
        attempt = 0
        exception = yield  # type: ignore[misc]
        while True:
            wait = retry_after_seconds(exception)
            if wait is None:
                wait = factor * (2**attempt) * (1 + random.random() / 10)
            attempt += 1
            exception = yield min(wait, cap)

    def backoff_jitter(self, value: float) -> float:
        return value  # jitter is applied in backoff_wait_generator, never to Retry-After

    def backoff_handler(self, details: t.Mapping[str, t.Any]) -> None:
        exception = details.get("exception")
        self.logger.warning(
            "Retrying in %.2f s (try %d of %d failed): %s",
            details.get("wait") or 0.0,
            details.get("tries") or 0,
            self.backoff_max_tries(),
            describe_exception(exception),
        )

    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        decorated = backoff.on_exception(
            self.backoff_wait_generator,
            RETRIABLE_EXCEPTIONS,
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(func)

        def call(*args: t.Any, **kwargs: t.Any) -> requests.Response:
            try:
                return decorated(*args, **kwargs)
            except RETRIABLE_EXCEPTIONS as exc:
                msg = (
                    f"Giving up after {self.backoff_max_tries()} tries: "
                    f"{describe_exception(exc)}. Cronofy or the network kept failing; "
                    "run the tap again later (state was kept, nothing is lost)."
                )
                raise CronofyAPIError(msg, status=status_of(exc)) from exc

        return call


def status_of(exc: BaseException | None) -> int | None:
    response = getattr(exc, "response", None)
    return response.status_code if response is not None else None


def describe_exception(exc: BaseException | None) -> str:
    """A secret-free description: status and path for HTTP errors, the type for others."""
    if isinstance(exc, RetriableAPIError):
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
        return max(0.0, (moment - server_time(response)).total_seconds())


def describe_field_errors(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or {}
    except (ValueError, AttributeError):
        return short_body(response)
    parts = []
    for field, problems in errors.items():
        descriptions = [
            str(problem.get("description") or problem.get("key"))
            for problem in problems or []
            if isinstance(problem, dict)
        ]
        parts.append(f"{field}: {', '.join(descriptions) or 'invalid'}")
    return SECRETS.redact("; ".join(parts)) or "no details given"


def short_body(response: requests.Response, limit: int = 300) -> str:
    text = response.text[:limit] if response.content else "empty body"
    return SECRETS.redact(text)
