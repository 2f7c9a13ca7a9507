"""A throwaway PostgreSQL server on a private port, from Debian's postgresql package."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def find_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """initdb + pg_ctl start with trust auth on 127.0.0.1:<port>; as ``postgres`` when root."""

    def __init__(self, port: int) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb) not found")
        self.bindir = bindir
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="tap-cronofy-pg-"))
        self.data = self.root / "data"
        self.user = "postgres"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, user="postgres")
            os.chmod(self.root, 0o755)
        else:
            self.user = os.environ.get("USER", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8")
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
        )
        deadline = time.monotonic() + 30
        while self._run("pg_isready", "-h", "127.0.0.1", "-p", str(port), check=False) != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not become ready")
            time.sleep(0.2)

    def _run(self, tool: str, *args: str, check: bool = True) -> int:
        command = [str(self.bindir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stderr or result.stdout}")
        return result.returncode

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def started() -> PostgresServer:
    """A server on a free port; without the binaries, the test fails under CI (.ci/run
    installs them) and is skipped elsewhere."""
    import pytest

    from harness.project import free_port

    if find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run should have installed it")
        pytest.skip("PostgreSQL server binaries not installed on this machine")
    return PostgresServer(free_port())


TOKEN_TABLE = (
    "CREATE TABLE cronofy_tokens (account_id TEXT PRIMARY KEY, access_token TEXT NOT NULL, "
    "refresh_token TEXT, expires_at TIMESTAMPTZ)"
)


def seed_token_store(url: str, entries: list[dict]) -> None:
    """The token store's table, as the manual creates it, holding ``entries`` (account_id,
    access_token, refresh_token; no expiry)."""
    import psycopg

    with psycopg.connect(url) as pg:
        pg.execute(TOKEN_TABLE)
        for entry in entries:
            pg.execute(
                "INSERT INTO cronofy_tokens VALUES (%s, %s, %s, NULL)",
                (entry["account_id"], entry["access_token"], entry["refresh_token"]),
            )
