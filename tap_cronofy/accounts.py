"""The run's calendar accounts: their tokens, OAuth refresh, and who they are (userinfo)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import typing as t

from tap_cronofy.errors import AccountError, CredentialError, CronofyAPIError
from tap_cronofy.redact import SECRETS
from tap_cronofy.settings import AccountConfig
from tap_cronofy.tokenstore import (
    Entry,
    FileTokenStore,
    NoStore,
    PostgresTokenStore,
    StoredToken,
    TokenStore,
    TokenStoreError,
)

if t.TYPE_CHECKING:
    from tap_cronofy.client import CronofyClient, Reply
    from tap_cronofy.report import RunReport
    from tap_cronofy.settings import Settings
    from tap_cronofy.tokenstore import Held

# Refresh this long before Cronofy says the token expires (at most half its lifetime).
EXPIRY_MARGIN_SECONDS = 120

# token_owner product: how often a run reads the store again after a 401, per account.
REREADS = 3

# The name of a lone access_token's account until Cronofy's userinfo names it.
UNNAMED = "(access_token)"

ADVICE = {
    401: "The account must be re-authorised in Cronofy (its token was not recognised).",
    403: "The token lacks the read_free_busy scope (read_events also grants it): "
    "authorise the account again requesting read_free_busy.",
    423: "Cronofy reports the account locked: its calendar credentials are "
    "unavailable until the user reconnects the calendar.",
}


def describe(account_id: str) -> str:
    """How messages name an account."""
    if account_id == UNNAMED:
        return "the account of the configured access_token"
    return f"account {account_id}"


def account_failure(account_id: str, error: CronofyAPIError) -> AccountError:
    """``error`` as this account's failure, with advice for credential problems. Credential
    problems are final: nothing more is asked for the account this run."""
    if isinstance(error, AccountError):
        return error
    message = str(error)
    if isinstance(error, CredentialError):
        if error.status in ADVICE:
            message = f"{message} for {describe(account_id)}. {ADVICE[error.status]}"
        return AccountError(account_id, message, status=error.status, final=True)
    return AccountError(account_id, message, status=error.status)


def identity_mismatch(account_id: str, sub: object) -> AccountError:
    if not isinstance(sub, str) or not sub:
        return AccountError(
            account_id,
            f"Cronofy's answer for {describe(account_id)} names no account (`sub`): its "
            "records are not loaded, since they could not be filed under a checked id.",
            final=True,
        )
    return AccountError(
        account_id,
        f"The access_token configured for account {account_id} belongs to {sub}: nothing "
        f"was loaded for either id from it. Fix the `accounts` entry so that each token "
        "sits beside its own account_id.",
        final=True,
    )


APP_REFUSED = (
    "Cronofy refused the application's own credentials (`client_id`/`client_secret`: "
    "invalid_client): fix them in the settings (the developer dashboard shows both). No "
    "account needs re-authorising for this, and no further token was refreshed this run."
)


class Application:
    """What all accounts' refreshes share: until one refresh has succeeded, refreshes go
    one at a time, so that once Cronofy refuses ``client_id``/``client_secret`` no other
    account spends a request to be refused alike."""

    def __init__(self) -> None:
        self.refused = False
        self.accepted = False  # a refresh succeeded: the credentials are good
        self.first = threading.Lock()  # held by the refresh that finds out


class AccountCredential:
    """An account's access token, refreshed when refresh credentials exist.

    One instance serves every stream and thread of the run for its account. With refresh
    credentials the token is refreshed before its first use (a scheduled run's configured
    token is usually stale: one token request, no 401 round trip) unless the token store
    holds one another process got that is still fresh, and again shortly before it expires;
    a 401 leads to at most one more refresh. Every refresh holds the account's lock in the
    token store (across processes), re-reads the account's latest tokens there first, and
    writes what Cronofy answered back before letting go: two processes never spend the same
    refresh token. When the product owns the tokens (``token_owner: product``) nothing is
    refreshed: the token is read from the store, and read again once after a 401. Once the
    account is refused, every later use fails at once, with no request.
    """

    def __init__(
        self,
        account: AccountConfig,
        settings: Settings,
        logger: logging.Logger,
        store: TokenStore | None = None,
        application: Application | None = None,
    ) -> None:
        self.account_id = account.account_id or UNNAMED
        self._application = application or Application()
        self.label = describe(self.account_id)
        self._token = account.access_token
        self._refresh_token = account.refresh_token
        # The refresh token the store held when last read (or as last written): one that
        # differs from it there was rotated by someone else; an equal one may be older than
        # ours (a save that failed or is turned off).
        self._stored_refresh = account.refresh_token
        self._client_id = settings.client_id
        self._client_secret = settings.client_secret
        self._product_owned = settings.token_owner == "product"
        self._logger = logger
        self._store: TokenStore = store or NoStore()
        self._expires_at: float | None = None
        self._lock = threading.Lock()
        self._ready = False  # the first use's refresh (or adoption) is done
        self._rereads = 0  # token_owner product: the store read again after a 401
        self._refreshed: set[str] = set()  # tokens this process got from Cronofy
        self.refresh_count = 0
        self.scope: str | None = None  # what the last refresh granted, as Cronofy says it
        self.failure: AccountError | None = None
        for secret in (account.access_token, account.refresh_token, settings.client_secret):
            SECRETS.add(secret)

    @property
    def can_refresh(self) -> bool:
        return bool(
            not self._product_owned
            and self._refresh_token
            and self._client_id
            and self._client_secret
        )

    def name(self, account_id: str) -> None:
        self.account_id = account_id
        self.label = describe(account_id)

    def fail(self, failure: AccountError) -> AccountError:
        if failure.final and self.failure is None:
            self.failure = failure
        return failure

    def bearer(self, client: CronofyClient) -> str:
        if self.failure is not None:
            raise self.failure
        token = self._token
        if self.can_refresh and (
            not self._ready or (self._expires_at is not None and time.time() > self._expires_at)
        ):
            self.refresh(token, client)
        return self._token

    def rejected(self, token: str, client: CronofyClient) -> None:
        if self._product_owned:
            self._reread_owned(token)
            return
        if not self.can_refresh:
            raise self.fail(
                AccountError(
                    self.account_id,
                    f"401 Unauthorized for {self.label}: the access token was not recognised "
                    "and no refresh credentials (refresh_token, client_id, client_secret) are "
                    "configured. Re-authorise the account and update its access_token.",
                    status=401,
                    final=True,
                )
            )
        if token in self._refreshed:
            raise self.fail(
                AccountError(
                    self.account_id,
                    f"401 Unauthorized for {self.label} even with a freshly refreshed token. "
                    "The account must be re-authorised in Cronofy.",
                    status=401,
                    final=True,
                )
            )
        self.refresh(token, client, refused=True)

    def _reread_owned(self, refused: str) -> None:
        """The product keeps the tokens: after a 401, its store is read once more."""
        with self._lock:
            if self._token != refused:
                return  # another thread read a newer one already
            try:
                current = self._store.current(self.account_id)
            except TokenStoreError as exc:
                raise self._store_failure(exc) from None
            self._rereads += 1
            if current is None or current.access_token == refused or self._rereads > REREADS:
                raise self.fail(
                    AccountError(
                        self.account_id,
                        f"401 Unauthorized for {self.label}, and {self._store.describe()} "
                        "(kept by your product, which refreshes it: `token_owner` is product) "
                        "holds no newer access token. Check that the product refreshes this "
                        "account, or that it is still connected.",
                        status=401,
                        final=True,
                    )
                )
            SECRETS.add(current.access_token)
            self._token = current.access_token

    def _store_failure(self, exc: TokenStoreError) -> AccountError:
        return self.fail(
            AccountError(
                self.account_id,
                f"The tokens of {self.label} cannot be read or saved: {exc}. It was not "
                "synced this run; its state is kept.",
                final=True,
            )
        )

    def _adopt(self, current: StoredToken, refused: str | None) -> bool:
        """Use the store's token when another process refreshed it and it is still fresh."""
        if current.access_token == refused or current.expires_at is None:
            return False
        if current.expires_at - EXPIRY_MARGIN_SECONDS <= time.time():
            return False
        SECRETS.add(current.access_token)
        self._token = current.access_token
        self._expires_at = current.expires_at - EXPIRY_MARGIN_SECONDS
        self._take_stored_refresh(current)
        self._ready = True
        return True

    def _take_stored_refresh(self, current: StoredToken) -> None:
        """The store's refresh token, when someone else put a new one there since we read
        (or wrote) it; else ours, which may be newer than what the store could keep."""
        if current.refresh_token and current.refresh_token != self._stored_refresh:
            SECRETS.add(current.refresh_token)
            self._refresh_token = current.refresh_token
        self._stored_refresh = current.refresh_token or self._stored_refresh

    def refresh(self, stale_token: str, client: CronofyClient, *, refused: bool = False) -> None:
        with self._lock:
            if self.failure is not None:
                raise self.failure  # another thread's refresh was refused
            if self._token != stale_token:
                return  # another thread refreshed already
            # Across processes: the account's lock, its latest tokens read under it.
            try:
                with self._store.holding(self.account_id) as held:
                    self._refresh_held(held, stale_token if refused else None, client)
            except TokenStoreError as exc:
                if self._token == stale_token:
                    raise self._store_failure(exc) from None
                # Refreshed, but the store failed to take it (its commit): go on with it.
                self._logger.error(
                    "Cronofy refreshed the token of %s, but it could not be saved: %s.",
                    self.label,
                    exc,
                )

    def _refresh_held(self, held: Held, refused: str | None, client: CronofyClient) -> None:
        current = held.current
        if current is not None:
            if self._adopt(current, refused):
                return
            self._take_stored_refresh(current)
        application = self._application
        gate = contextlib.nullcontext() if application.accepted else application.first
        with gate:  # until one refresh succeeded, one at a time
            if application.refused:
                raise self.fail(AccountError(self.account_id, APP_REFUSED, status=400, final=True))
            self._refresh(client, held, refused)

    def _refresh(self, client: CronofyClient, held: Held, refused: str | None) -> None:
        """One token request (two when another holder rotated the refresh token meanwhile):
        its tokens kept and written to the store, or the account (or application) failed."""
        used = self._refresh_token
        reply = self._token_request(client)
        if reply.status in (400, 401) and reply.body.get("error") == "invalid_grant":
            # Refused: if someone outside our locks (the product, an older release) rotated
            # it since, the store has the new one: read it again and try that once.
            again = held.reread()
            if again is not None and self._adopt(again, refused):
                return
            if again is not None and again.refresh_token and again.refresh_token != used:
                SECRETS.add(again.refresh_token)
                self._refresh_token = again.refresh_token
                self._stored_refresh = again.refresh_token
                reply = self._token_request(client)
        if reply.status in (400, 401) and reply.body.get("error") == "invalid_client":
            self._application.refused = True
            raise self.fail(
                AccountError(self.account_id, APP_REFUSED, status=reply.status, final=True)
            )
        if reply.status != 200 or not reply.body.get("access_token"):
            error = SECRETS.redact(str(reply.body.get("error") or "no access_token"))
            raise self.fail(
                AccountError(
                    self.account_id,
                    f"Refreshing the access token of {self.label} failed with "
                    f"{reply.status} ({error}). The account must be re-authorised: "
                    "connect it again and update its tokens.",
                    status=reply.status,
                    final=True,
                )
            )
        self._application.accepted = True
        token = reply.body["access_token"]
        scope = reply.body.get("scope")
        self.scope = scope if isinstance(scope, str) else None
        SECRETS.add(token)
        rotated = reply.body.get("refresh_token")
        is_new = isinstance(rotated, str) and bool(rotated) and rotated != self._refresh_token
        if is_new:
            SECRETS.add(rotated)
            self._refresh_token = rotated
        expires_in = reply.body.get("expires_in")
        expires_at: float | None = None
        if isinstance(expires_in, (int, float)) and expires_in > 0:
            margin = min(EXPIRY_MARGIN_SECONDS, expires_in / 2)
            expires_at = time.time() + expires_in
            self._expires_at = expires_at - margin
        else:
            self._expires_at = None
        self._refreshed.add(token)
        self._token = token
        self._ready = True
        self.refresh_count += 1
        self._keep(held, StoredToken(token, self._refresh_token, expires_at), rotated=is_new)

    def _token_request(self, client: CronofyClient) -> Reply:
        return client.token_request(
            {
                "grant_type": "refresh_token",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "refresh_token": self._refresh_token,
            }
        )

    def _keep(self, held: Held, token: StoredToken, *, rotated: bool) -> None:
        """The new tokens into the store, before its lock is let go; a store that cannot
        take them is said, and the run goes on with them."""
        if self._store.writable:
            try:
                held.save(token)
                self._stored_refresh = token.refresh_token
            except TokenStoreError as exc:
                self._logger.error(
                    "Cronofy %s %s, but it could not be saved: %s.",
                    "rotated the refresh token of" if rotated else "refreshed the token of",
                    self.label,
                    exc,
                )
            else:
                if rotated:
                    self._logger.info(
                        "Cronofy rotated the refresh token of %s; saved to %s.",
                        self.label,
                        self._store.describe(),
                    )
                return
        if rotated:
            self._logger.warning(
                "Cronofy returned a NEW refresh token for %s. The tap uses it for the rest of "
                "this run but cannot save it into your settings: if the old one stops working, "
                "re-authorise the account and update its refresh_token (with accounts_file and "
                "save_rotated_refresh_tokens, or token_store, the tap saves it itself).",
                self.label,
            )


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


def open_store(settings: Settings) -> TokenStore:
    """Where the accounts' tokens are kept and shared: the ``token_store`` table, the
    ``accounts_file``, or nowhere (tokens given in the settings)."""
    writable = settings.token_owner == "tap" and settings.save_rotated_refresh_tokens
    if settings.token_store:
        try:
            return PostgresTokenStore(
                settings.token_store,
                settings.token_store_table,
                dict(settings.token_store_columns),
                writable=settings.token_owner == "tap",
            )
        except TokenStoreError as exc:
            raise CronofyAPIError(
                f"`token_store` cannot be used: {exc}. Nothing was requested; check the URL "
                "and that PostgreSQL is reachable (pip install 'tap-cronofy[postgres]')."
            ) from None
    if settings.accounts_file:
        return FileTokenStore(settings.accounts_file, writable=writable)
    return NoStore()


def stored_account(entry: Entry) -> AccountConfig:
    return AccountConfig(entry.account_id, entry.token.access_token, entry.token.refresh_token)


class Accounts:
    """The accounts of a run, in a stable order, each with one shared credential, its
    checked identity and its userinfo (asked of Cronofy at most once per run)."""

    def __init__(
        self, settings: Settings, client: CronofyClient, logger: logging.Logger, report: RunReport
    ) -> None:
        self._settings = settings
        self._client = client
        self._logger = logger
        self._report = report
        self._lock = threading.Lock()
        self._credentials: dict[str, AccountCredential] = {}
        self._userinfo: dict[str, dict] = {}
        self._verified: set[str] = set()
        self._reported: dict[str, AccountError] = {}  # the failure a stream said last
        self._app_refusal_said = False
        self._ids: list[str] | None = None
        self._unidentified = False  # a lone access_token's id could not be asked this run
        self.store = open_store(settings)
        self._configured = {a.account_id: a for a in settings.accounts if a.account_id}
        if isinstance(self.store, PostgresTokenStore):  # the table lists the accounts
            self._configured = {e.account_id: stored_account(e) for e in self._listed()}
        self.application = Application()

    def _listed(self) -> list[Entry]:
        try:
            return self.store.entries()
        except TokenStoreError as exc:
            raise CronofyAPIError(
                f"The accounts cannot be listed: {exc}. Nothing was requested; check "
                "`token_store` and that PostgreSQL is reachable."
            ) from None

    def ids(self) -> list[str]:
        """Account ids sorted, those of this run's ``shard`` only; a lone ``access_token``'s
        id is asked of Cronofy (once). When that fails, the account is reported and there is
        nothing to sync for it."""
        if self._ids is None:
            shard = self._settings.shard
            if self._settings.has_account_list:
                self._ids = sorted(a for a in self._configured if shard is None or shard.holds(a))
            elif self._settings.accounts:
                self._ids = self._identify(self._settings.accounts[0])
            else:
                self._ids = []
        return self._ids

    def gone(self, known: t.Iterable[str]) -> list[str]:
        """The accounts of ``known`` (a stream's state) no longer configured, to drop from
        it (those of another shard stay); none when this run could not tell which account
        a lone ``access_token`` is (a failed or refused userinfo): a failure never drops an
        account's state."""
        ids = self.ids()
        if self._unidentified:
            return []
        wanted = set(self._configured) if self._settings.has_account_list else set(ids)
        return [account_id for account_id in known if account_id not in wanted]

    def _identify(self, account: AccountConfig) -> list[str]:
        credential = self._new_credential(account)
        try:
            reply = self._client.get(self._client.url("/v1/userinfo"), credential=credential)
            sub = reply.body.get("sub")
            if not isinstance(sub, str) or not sub:
                raise identity_mismatch(UNNAMED, sub)
        except CronofyAPIError as exc:
            self.fail(UNNAMED, exc, credential)
            self._unidentified = True
            return []
        credential.name(sub)
        with self._lock:
            self._credentials[sub] = credential
            self._userinfo[sub] = reply.body
            self._verified.add(sub)
        return [sub]

    def _new_credential(self, account: AccountConfig) -> AccountCredential:
        return AccountCredential(
            account, self._settings, self._logger, self.store, application=self.application
        )

    def credential(self, account_id: str) -> AccountCredential:
        """The account's credential; raises its failure when it already failed this run."""
        with self._lock:
            credential = self._credentials.get(account_id)
            if credential is None:
                credential = self._new_credential(self._configured[account_id])
                self._credentials[account_id] = credential
        if credential.failure is not None:
            raise credential.failure
        return credential

    def fail(
        self, account_id: str, error: CronofyAPIError, credential: AccountCredential | None = None
    ) -> tuple[AccountError, bool]:
        """Report ``error`` as the account's failure; final failures stop every later request
        for it. Returns the failure and whether it is new (not already reported)."""
        failure = account_failure(account_id, error)
        credential = credential or self._credentials.get(account_id)
        if credential is not None:
            credential.fail(failure)
        self._report.account_failed(account_id, str(failure))
        new = self._reported.get(account_id) is not failure  # another failure is said too
        self._reported[account_id] = failure
        if new and str(failure) == APP_REFUSED:  # the same cause for every account: once
            new, self._app_refusal_said = not self._app_refusal_said, True
        return failure, new

    def verify(self, account_id: str, sub: object) -> None:
        """Before anything is emitted for the account: the token must be the account's own.
        ``sub`` is what the answer at hand says (None when it says nothing: Cronofy is then
        asked once per run)."""
        if sub is None:
            if account_id in self._verified:
                return
            sub = self.userinfo(account_id).get("sub")
        if sub != account_id:
            credential = self.credential(account_id)
            raise credential.fail(identity_mismatch(account_id, sub))
        self._verified.add(account_id)

    def userinfo(self, account_id: str) -> dict:
        """The account's userinfo: the one a free_busy answer embedded or the lookup made for
        a lone access_token, else ``GET /v1/userinfo`` (once per run)."""
        if (known := self._userinfo.get(account_id)) is not None:
            return known
        credential = self.credential(account_id)
        body = self._client.get(self._client.url("/v1/userinfo"), credential=credential).body
        self._userinfo[account_id] = body
        return body

    def known_userinfo(self, account_id: str) -> dict | None:
        """The account's userinfo if this run already has it (embedded, or looked up), its
        identity checked; None when it would take a request."""
        if account_id not in self._verified:
            return None
        return self._userinfo.get(account_id)

    def remember_userinfo(self, account_id: str, userinfo: object) -> None:
        """Keep an embedded userinfo (already checked by ``verify``) for the accounts stream."""
        if isinstance(userinfo, dict):
            self._userinfo[account_id] = userinfo
