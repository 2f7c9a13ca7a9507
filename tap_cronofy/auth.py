"""Bearer tokens per account, refreshed at most once per rejection, never sent off-host."""

from __future__ import annotations

import threading
import time
import typing as t
from urllib.parse import urlsplit

import requests

from tap_cronofy.errors import AccountError, ForeignHostError
from tap_cronofy.redact import SECRETS

if t.TYPE_CHECKING:
    from tap_cronofy.settings import AccountConfig

# Refresh this long before Cronofy says the token expires.
EXPIRY_MARGIN_SECONDS = 120

PostJSON = t.Callable[[str, dict], requests.Response]


def same_origin(url: str, base_url: str) -> bool:
    """True when ``url`` has the scheme, host and port of ``base_url``."""
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


class BearerAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer`` to requests for the API base and refuses any other host."""

    def __init__(self, base_url: str, token: str, label: str) -> None:
        self.base_url = base_url
        self.label = label
        self._token = token
        SECRETS.add(token)

    @property
    def token(self) -> str:
        return self._token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if not same_origin(request.url or "", self.base_url):
            host = urlsplit(request.url or "").netloc
            msg = (
                f"Refusing to send the {self.label} credentials to {host!r}: only "
                f"{urlsplit(self.base_url).netloc!r} (the configured API base) may receive them."
            )
            raise ForeignHostError(msg)
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class AccountAuth(BearerAuth):
    """An account's access token, with OAuth refresh when refresh credentials exist.

    One instance serves every stream and thread of the run for its account: a 401 leads
    to one refresh, whichever thread sees it first; the rotated refresh token is kept in
    memory for the rest of the run.
    """

    def __init__(
        self,
        base_url: str,
        account: AccountConfig,
        *,
        client_id: str | None,
        client_secret: str | None,
    ) -> None:
        self.account_id = account.account_id or "the configured account"
        super().__init__(base_url, account.access_token, f"account {self.account_id}")
        self._refresh_token = account.refresh_token
        self._client_id = client_id
        self._client_secret = client_secret
        self._expires_at: float | None = None
        self._lock = threading.Lock()
        self._refreshed_tokens: set[str] = set()
        self.refresh_count = 0
        SECRETS.add(account.refresh_token)
        SECRETS.add(client_secret)

    @property
    def can_refresh(self) -> bool:
        return bool(self._refresh_token and self._client_id and self._client_secret)

    def set_account_id(self, account_id: str) -> None:
        self.account_id = account_id
        self.label = f"account {account_id}"

    def ensure_fresh(self, post_json: PostJSON) -> None:
        """Refresh ahead of time when the token Cronofy gave us is about to expire."""
        if self._expires_at is not None and time.time() > self._expires_at:
            self.refresh(self._token, post_json)

    def handle_rejection(self, rejected_token: str, post_json: PostJSON) -> None:
        """After a 401: refresh (once for this token) or say the account needs re-authorising."""
        if not self.can_refresh:
            raise AccountError(
                self.account_id,
                f"401 Unauthorized for account {self.account_id}: the access token was not "
                "recognised and no refresh credentials (refresh_token, client_id, client_secret) "
                "are configured. Re-authorise the account and update its access_token.",
                status=401,
            )
        if rejected_token in self._refreshed_tokens:
            raise AccountError(
                self.account_id,
                f"401 Unauthorized for account {self.account_id} even with a freshly refreshed "
                "token. The account must be re-authorised in Cronofy.",
                status=401,
            )
        self.refresh(rejected_token, post_json)

    def refresh(self, stale_token: str, post_json: PostJSON) -> None:
        with self._lock:
            if self._token != stale_token:
                return  # another thread refreshed already
            body = {
                "grant_type": "refresh_token",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "refresh_token": self._refresh_token,
            }
            url = f"{self.base_url}/oauth/token"
            response = post_json(url, body)
            if response.status_code != 200:
                error = _oauth_error(response)
                raise AccountError(
                    self.account_id,
                    f"Refreshing the access token of account {self.account_id} failed with "
                    f"{response.status_code} ({error}). The account must be re-authorised: "
                    "connect it again and update its tokens.",
                    status=response.status_code,
                )
            payload = response.json()
            token = payload["access_token"]
            SECRETS.add(token)
            if payload.get("refresh_token"):
                SECRETS.add(payload["refresh_token"])
                self._refresh_token = payload["refresh_token"]
            expires_in = payload.get("expires_in")
            if isinstance(expires_in, (int, float)) and expires_in > 0:
                margin = min(EXPIRY_MARGIN_SECONDS, expires_in / 2)
                self._expires_at = time.time() + expires_in - margin
            else:
                self._expires_at = None
            self._refreshed_tokens.add(token)
            self._token = token
            self.refresh_count += 1


def _oauth_error(response: requests.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    return SECRETS.redact(str(error)) if error else response.reason or "no reason given"
