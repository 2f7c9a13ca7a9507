"""Where every process of the application finds each account's current tokens: read again
before any refresh, under a lock that spans processes, and written back before it is let go."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import itertools
import json
import os
import re
import stat
import tempfile
import threading
import time
import typing as t
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml  # a dependency of singer-sdk

if t.TYPE_CHECKING:
    from collections.abc import Iterator

# Per-account locks are byte ranges of one lock file beside the accounts file: byte 0 is
# the file's own (held while it is rewritten), bytes 1..BUCKETS the accounts' (by hash).
BUCKETS = 4096
EXPIRES_KEY = "access_token_expires_at"  # written into an accounts file's entries
COLUMNS = ("account_id", "access_token", "refresh_token", "expires_at")


class TokenStoreError(Exception):
    """The store cannot be read or written; its message names it, never a token."""


@dataclass(frozen=True)
class StoredToken:
    """An account's tokens as the store holds them now. ``expires_at``: epoch seconds, or
    None when the store does not know (a token typed into a file)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None


@dataclass(frozen=True)
class Entry:
    """One account as the store lists it."""

    account_id: str
    token: StoredToken


class Held(t.Protocol):
    """An account's tokens while its lock is held: ``current`` as read under the lock."""

    current: StoredToken | None

    def reread(self) -> StoredToken | None: ...

    def save(self, token: StoredToken) -> None: ...


class TokenStore(t.Protocol):
    """``writable``: the tap writes refreshed tokens back (False: the tap only reads)."""

    writable: bool

    def describe(self) -> str: ...

    def entries(self) -> list[Entry]: ...

    def current(self, account_id: str) -> StoredToken | None: ...

    def holding(self, account_id: str) -> contextlib.AbstractContextManager[Held]: ...


class _NoneHeld:
    current: StoredToken | None = None

    def reread(self) -> None:
        return None

    def save(self, token: StoredToken) -> None:
        return None


class NoStore:
    """Tokens given in the settings: nothing to share, nothing to write."""

    writable = False

    def describe(self) -> str:
        return "the settings"

    def entries(self) -> list[Entry]:
        return []

    def current(self, account_id: str) -> StoredToken | None:
        return None

    @contextlib.contextmanager
    def holding(self, account_id: str) -> Iterator[Held]:
        yield _NoneHeld()


def _epoch(value: object) -> float | None:
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return moment.timestamp()
    if isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return _epoch(moment)
    return None


def _iso(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _token(entry: t.Mapping[str, t.Any]) -> StoredToken | None:
    access = entry.get("access_token")
    if not isinstance(access, str) or not access:
        return None
    refresh = entry.get("refresh_token")
    return StoredToken(
        access,
        refresh if isinstance(refresh, str) and refresh else None,
        _epoch(entry.get(EXPIRES_KEY)),
    )


def is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yml", ".yaml")


def parse(path: Path) -> t.Any:
    """A JSON or YAML file's data. ValueError names the line and what is wrong, and never
    quotes the file (its lines hold tokens): ``line 3, column 6: mapping values are not
    allowed here``. OSError when it cannot be read."""
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text) if is_yaml(path) else json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        # The parser's words, without what it quotes of the file (a token, maybe).
        problem = re.sub(r"'[^']{2,}'|\"[^\"]{2,}\"", "...", exc.problem or "not valid YAML")
        raise ValueError(f"{at}{problem}") from None
    except yaml.YAMLError:
        raise ValueError("not valid YAML") from None


class FileTokenStore:
    """An ``accounts_file`` (JSON or YAML) shared by the processes of one host (or of hosts
    whose shared file system honours POSIX locks). Refreshes of one account are serialised
    across processes by a byte-range lock; a rewrite re-reads the file under the file's own
    lock, changes only this account's entry and replaces the file atomically."""

    def __init__(self, path: str | os.PathLike[str], *, writable: bool = True) -> None:
        self.path = Path(path).resolve()  # a symlinked file is rewritten where it lives
        self.writable = writable
        self._lock_path = self.path.parent / f".{self.path.name}.lock"
        self._fd: int | None = None
        self._fd_lock = threading.Lock()
        # POSIX record locks belong to the process: threads take these first.
        self._threads = [threading.Lock() for _ in range(BUCKETS + 1)]

    def describe(self) -> str:
        return f"accounts_file {self.path}"

    def _lock_fd(self) -> int:
        with self._fd_lock:
            if self._fd is None:
                try:
                    self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                except OSError as exc:
                    msg = (
                        f"the lock file {self._lock_path} cannot be made ({exc.strerror}): "
                        "the tap writes rotated tokens beside it, so its directory must be "
                        "writable (or set save_rotated_refresh_tokens false)"
                    )
                    raise TokenStoreError(msg) from None
            return self._fd

    @contextlib.contextmanager
    def _locked(self, byte: int) -> Iterator[None]:
        with self._threads[byte]:
            fd = self._lock_fd() if self.writable else None
            if fd is None:  # nothing is written (a read-only mount): this process's lock
                yield
                return
            for attempt in itertools.count():
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX, 1, byte)
                    break
                except OSError as exc:
                    # The kernel sees locks per process: a thread waiting for the file's
                    # byte while another process's thread waits for this one's account
                    # looks like a deadlock to it. None is real (the file's byte is held
                    # only to rewrite the file, never while waiting), so try again.
                    if exc.errno != errno.EDEADLK:
                        raise TokenStoreError(f"{self.describe()} cannot be locked") from None
                    time.sleep(min(0.001 * 2**attempt, 0.05))
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, byte)

    def _read(self) -> t.Any:
        try:
            return parse(self.path)
        except OSError as exc:
            raise TokenStoreError(f"{self.describe()} cannot be read ({exc.strerror})") from None
        except ValueError as exc:
            raise TokenStoreError(f"{self.describe()} cannot be read: {exc}") from None

    @staticmethod
    def _list(data: t.Any) -> list:
        entries = data.get("accounts") if isinstance(data, dict) else data
        return entries if isinstance(entries, list) else []

    def _tokens(self) -> dict[str, StoredToken]:
        """Every entry's tokens, read now (a cache keyed by the file's inode, time and size
        would be fooled by a replaced file that reuses all three)."""
        tokens = {}
        for entry in self._list(self._read()):
            if isinstance(entry, dict) and (token := _token(entry)) is not None:
                tokens[str(entry.get("account_id"))] = token
        return tokens

    def entries(self) -> list[Entry]:
        return [Entry(a, token) for a, token in self._tokens().items()]

    def current(self, account_id: str) -> StoredToken | None:
        return self._tokens().get(account_id)

    @contextlib.contextmanager
    def holding(self, account_id: str) -> Iterator[Held]:
        bucket = 1 + zlib.crc32(account_id.encode()) % BUCKETS
        with self._locked(bucket):
            yield _ReadHeld(self.current, account_id, self.save if self.writable else None)

    def save(self, account_id: str, token: StoredToken) -> None:
        """This account's entry only, under the file's lock, re-read first."""
        with self._locked(0):
            data = self._read()
            matches = [
                e
                for e in self._list(data)
                if isinstance(e, dict) and e.get("account_id") == account_id
            ]
            if len(matches) != 1:
                count = len(matches)
                msg = f"{self.describe()} has {count} entries for account {account_id}, not one"
                raise TokenStoreError(msg)
            entry = matches[0]
            entry["access_token"] = token.access_token
            if token.refresh_token:
                entry["refresh_token"] = token.refresh_token
            if token.expires_at is not None:
                entry[EXPIRES_KEY] = _iso(token.expires_at)
            else:
                entry.pop(EXPIRES_KEY, None)
            self._replace(data)

    def _replace(self, data: t.Any) -> None:
        target = self.path
        if is_yaml(target):
            rendered = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        else:
            rendered = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        except OSError as exc:
            raise TokenStoreError(f"{self.describe()} cannot be written ({exc.strerror})") from None
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(rendered)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, target)
        except BaseException as exc:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                msg = f"{self.describe()} cannot be written ({exc.strerror})"
                raise TokenStoreError(msg) from None
            raise


class _ReadHeld:
    """An account's tokens as ``read`` gives them, written back by ``write`` (None: a
    store the tap only reads)."""

    def __init__(
        self,
        read: t.Callable[[str], StoredToken | None],
        account_id: str,
        write: t.Callable[[str, StoredToken], None] | None = None,
    ) -> None:
        self._read = read
        self._write = write
        self._account_id = account_id
        self.current = read(account_id)

    def reread(self) -> StoredToken | None:
        self.current = self._read(self._account_id)
        return self.current

    def save(self, token: StoredToken) -> None:
        if self._write is not None:
            self._write(self._account_id, token)
            self.current = token


def _table_sql(table: str) -> t.Any:
    from psycopg import sql

    return sql.SQL(".").join(sql.Identifier(part) for part in table.split("."))


class PostgresTokenStore:
    """A table of tokens (``account_id``, ``access_token``, ``refresh_token``,
    ``expires_at``; names mapped by ``columns``) that shards on several hosts share: a
    refresh holds the account's row lock (``SELECT ... FOR UPDATE``) from the re-read to the
    write of the rotated tokens, which commit in the same transaction."""

    def __init__(
        self,
        url: str,
        table: str = "cronofy_tokens",
        columns: t.Mapping[str, str] | None = None,
        *,
        writable: bool = True,
        connect: t.Callable[[str], t.Any] | None = None,
    ) -> None:
        self.url = url
        self.table = table
        given = dict(columns or {})
        self.columns = {name: given.get(name, name) for name in COLUMNS}
        self.writable = writable
        self._connect = connect
        if writable:
            self._create()

    def describe(self) -> str:
        return f"token_store table {self.table}"

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[t.Any]:
        try:
            import psycopg  # pip install 'tap-cronofy[postgres]'
        except ImportError as exc:
            msg = "the PostgreSQL token store needs psycopg: pip install 'tap-cronofy[postgres]'"
            raise TokenStoreError(msg) from exc
        try:
            connect = self._connect or psycopg.connect
            with connect(self.url) as connection, connection.cursor() as cursor:
                yield cursor
        except psycopg.Error as exc:
            code = exc.sqlstate or "no code"
            msg = f"{self.describe()} cannot be used ({type(exc).__name__}: {code})"
            raise TokenStoreError(msg) from None  # psycopg's text may quote the URL

    def _q(self, template: str) -> t.Any:
        from psycopg import sql

        names = {  # a column mapped to "" is one the product's table does not have
            key: sql.Identifier(value) if value else sql.SQL("NULL")
            for key, value in self.columns.items()
        }
        return sql.SQL(template).format(table=_table_sql(self.table), **names)

    def _create(self) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                self._q(
                    "CREATE TABLE IF NOT EXISTS {table} ({account_id} TEXT PRIMARY KEY, "
                    "{access_token} TEXT NOT NULL, {refresh_token} TEXT, "
                    "{expires_at} TIMESTAMPTZ)"
                )
            )

    def _select(self) -> str:
        return "SELECT {account_id}, {access_token}, {refresh_token}, {expires_at} FROM {table}"

    @staticmethod
    def _row(row: t.Sequence[t.Any]) -> Entry | None:
        account_id, access, refresh, expires = row
        if not access:
            return None
        return Entry(str(account_id), StoredToken(str(access), refresh or None, _epoch(expires)))

    def entries(self) -> list[Entry]:
        with self._transaction() as cursor:
            cursor.execute(self._q(self._select() + " ORDER BY {account_id}"))
            return [entry for row in cursor.fetchall() if (entry := self._row(row))]

    def current(self, account_id: str) -> StoredToken | None:
        with self._transaction() as cursor:
            cursor.execute(self._q(self._select() + " WHERE {account_id} = %s"), (account_id,))
            row = cursor.fetchone()
        entry = self._row(row) if row else None
        return entry.token if entry else None

    @contextlib.contextmanager
    def holding(self, account_id: str) -> Iterator[Held]:
        if not self.writable:  # the product refreshes: no lock of ours on its rows
            yield _ReadHeld(self.current, account_id)
            return
        with self._transaction() as cursor:
            yield _RowHeld(self, cursor, account_id)


class _RowHeld:
    def __init__(self, store: PostgresTokenStore, cursor: t.Any, account_id: str) -> None:
        self._store = store
        self._cursor = cursor
        self._account_id = account_id
        self.current = self.reread()

    def reread(self) -> StoredToken | None:
        self._cursor.execute(
            self._store._q(self._store._select() + " WHERE {account_id} = %s FOR UPDATE"),
            (self._account_id,),
        )
        row = self._cursor.fetchone()
        entry = self._store._row(row) if row else None
        self.current = entry.token if entry else None
        return self.current

    def save(self, token: StoredToken) -> None:
        import psycopg

        try:
            self._update(token)
        except psycopg.Error as exc:
            msg = f"{self._store.describe()} cannot be written ({type(exc).__name__})"
            raise TokenStoreError(msg) from None
        self.current = token

    def _update(self, token: StoredToken) -> None:
        expires = (
            dt.datetime.fromtimestamp(token.expires_at, dt.timezone.utc)
            if token.expires_at is not None
            else None
        )
        self._cursor.execute(
            self._store._q(
                "UPDATE {table} SET {access_token} = %s, "
                "{refresh_token} = COALESCE(%s, {refresh_token}), {expires_at} = %s "
                "WHERE {account_id} = %s"
            ),
            (token.access_token, token.refresh_token, expires, self._account_id),
        )
