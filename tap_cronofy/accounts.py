"""The run's calendar accounts: their tokens, OAuth refresh, and who they are (userinfo)."""

from __future__ import annotations

import logging
import threading
import time
import typing as t

from tap_cronofy.errors import AccountError, CredentialError, CronofyAPIError
from tap_cronofy.redact import SECRETS

if t.TYPE_CHECKING:
    from tap_cronofy.client import CronofyClient
    from tap_cronofy.settings import AccountConfig, Settings

# Refresh this long before Cronofy says the token expires (at most half its lifetime).
EXPIRY_MARGIN_SECONDS = 120

ADVICE = {
    401: "The account must be re-authorised in Cronofy (its token was not recognised).",
    403: "The token lacks the read_free_busy scope (read_events also grants it): "
    "authorise the account again requesting read_free_busy.",
    423: "Cronofy reports the account locked: its calendar credentials are "
    "unavailable until the user reconnects the calendar.",
}


def account_failure(account_id: str, error: CronofyAPIError) -> AccountError:
    """``error`` as this account's failure, with advice for credential problems."""
    if isinstance(error, AccountError):
        return error
    message = str(error)
    if isinstance(error, CredentialError) and error.status in ADVICE:
        message = f"{message} for account {account_id}. {ADVICE[error.status]}"
    return AccountError(account_id, message, status=error.status)


class AccountCredential:
    """An account's access token, refreshed when refresh credentials exist.

    One instance serves every stream and thread of the run for its account. With refresh
    credentials the token is refreshed before its first use (a scheduled run's configured
    token is usually stale: one token request, no 401 round trip) and again shortly before
    Cronofy says it expires; a 401 leads to at most one more refresh.
    """

    def __init__(self, account: AccountConfig, settings: Settings, logger: logging.Logger) -> None:
        self.account_id = account.account_id or "the configured account"
        self.label = f"account {self.account_id}"
        self._token = account.access_token
        self._refresh_token = account.refresh_token
        self._client_id = settings.client_id
        self._client_secret = settings.client_secret
        self._logger = logger
        self._expires_at: float | None = None
        self._lock = threading.Lock()
        self._refreshed: set[str] = set()
        self.refresh_count = 0
        for secret in (account.access_token, account.refresh_token, settings.client_secret):
            SECRETS.add(secret)

    @property
    def can_refresh(self) -> bool:
        return bool(self._refresh_token and self._client_id and self._client_secret)

    def name(self, account_id: str) -> None:
        self.account_id = account_id
        self.label = f"account {account_id}"

    def bearer(self, client: CronofyClient) -> str:
        token = self._token
        if self.can_refresh and (
            not self._refreshed or (self._expires_at is not None and time.time() > self._expires_at)
        ):
            self.refresh(token, client)
        return self._token

    def rejected(self, token: str, client: CronofyClient) -> None:
        if not self.can_refresh:
            raise AccountError(
                self.account_id,
                f"401 Unauthorized for account {self.account_id}: the access token was not "
                "recognised and no refresh credentials (refresh_token, client_id, client_secret) "
                "are configured. Re-authorise the account and update its access_token.",
                status=401,
            )
        if token in self._refreshed:
            raise AccountError(
                self.account_id,
                f"401 Unauthorized for account {self.account_id} even with a freshly refreshed "
                "token. The account must be re-authorised in Cronofy.",
                status=401,
            )
        self.refresh(token, client)

    def refresh(self, stale_token: str, client: CronofyClient) -> None:
        with self._lock:
            if self._token != stale_token:
                return  # another thread refreshed already
            reply = client.token_request(
                {
                    "grant_type": "refresh_token",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                    "refresh_token": self._refresh_token,
                }
            )
            if reply.status != 200 or not reply.body.get("access_token"):
                error = SECRETS.redact(str(reply.body.get("error") or "no access_token"))
                raise AccountError(
                    self.account_id,
                    f"Refreshing the access token of account {self.account_id} failed with "
                    f"{reply.status} ({error}). The account must be re-authorised: connect it "
                    "again and update its tokens.",
                    status=reply.status,
                )
            token = reply.body["access_token"]
            SECRETS.add(token)
            rotated = reply.body.get("refresh_token")
            if rotated and rotated != self._refresh_token:
                SECRETS.add(rotated)
                self._refresh_token = rotated
                self._logger.warning(
                    "Cronofy returned a NEW refresh token for account %s. The tap uses it for "
                    "the rest of this run but cannot save it into your settings: if the old "
                    "one stops working, re-authorise the account and update its refresh_token.",
                    self.account_id,
                )
            expires_in = reply.body.get("expires_in")
            if isinstance(expires_in, (int, float)) and expires_in > 0:
                margin = min(EXPIRY_MARGIN_SECONDS, expires_in / 2)
                self._expires_at = time.time() + expires_in - margin
            else:
                self._expires_at = None
            self._refreshed.add(token)
            self._token = token
            self.refresh_count += 1


class SecretCredential:
    """A fixed Bearer secret (the Scheduler's Internal Application), never refreshed."""

    def __init__(self, secret: str, label: str) -> None:
        self._secret = secret
        self.label = label
        SECRETS.add(secret)

    def bearer(self, client: CronofyClient) -> str:
        return self._secret

    def rejected(self, token: str, client: CronofyClient) -> None:
        raise CredentialError(f"401 Unauthorized for the {self.label}", status=401)


class Accounts:
    """The accounts of a run, in a stable order, each with one shared credential."""

    def __init__(self, settings: Settings, client: CronofyClient, logger: logging.Logger) -> None:
        self._settings = settings
        self._client = client
        self._logger = logger
        self._lock = threading.Lock()
        self._credentials: dict[str, AccountCredential] = {}
        self._ids: list[str] | None = None

    def ids(self) -> list[str]:
        """Account ids sorted; a lone ``access_token``'s id is asked of Cronofy (once)."""
        if self._ids is None:
            if self._settings.has_account_list:
                self._ids = [a.account_id for a in self._settings.accounts if a.account_id]
            elif self._settings.accounts:
                self._ids = [self._identify(self._settings.accounts[0])]
            else:
                self._ids = []
        return self._ids

    def _identify(self, account: AccountConfig) -> str:
        credential = AccountCredential(account, self._settings, self._logger)
        try:
            reply = self._client.get(self._client.url("/v1/userinfo"), credential=credential)
        except CronofyAPIError as exc:  # nothing else to sync: the run fails
            failure = account_failure(credential.account_id, exc)
            raise CronofyAPIError(str(failure), status=failure.status) from exc
        sub = reply.body.get("sub")
        if not isinstance(sub, str) or not sub:
            raise CronofyAPIError("Cronofy's userinfo answer has no `sub` (account id).")
        credential.name(sub)
        self._credentials[sub] = credential
        return sub

    def credential(self, account_id: str) -> AccountCredential:
        with self._lock:
            if account_id not in self._credentials:
                account = next(a for a in self._settings.accounts if a.account_id == account_id)
                self._credentials[account_id] = AccountCredential(
                    account, self._settings, self._logger
                )
            return self._credentials[account_id]
