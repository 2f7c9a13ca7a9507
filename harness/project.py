"""Helpers shared by the demo and the end-to-end tests: a standalone simulator process,
its control API, and Meltano runs pointed at it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SimulatorProcess:
    """``python -m simulator`` in its own process, driven through ``/_sim``."""

    def __init__(self, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--port", str(self.port), *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.control("GET", "app")
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)

    def control(self, method: str, path: str, body: object = None) -> t.Any:  # JSON
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_sim/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def tap_settings(self) -> dict:
        app = self.control("GET", "app")
        accounts = self.control("GET", "accounts")
        return {
            "api_url": self.url,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "accounts": [
                {k: a[k] for k in ("account_id", "access_token", "refresh_token")} for a in accounts
            ],
            "scheduling_request_ids": self.control("GET", "scheduling_requests"),
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def meltano_env(settings: dict, **extra: str) -> dict[str, str]:
    """Environment that configures the tap through Meltano's TAP_CRONOFY_* variables."""
    env = {
        **os.environ,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for name, value in settings.items():
        variable = f"TAP_CRONOFY_{name.upper()}"
        env[variable] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    env.update(extra)
    return env


def meltano(
    *args: str, env: dict[str, str], check: bool = True, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(BIN / "meltano"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"meltano {' '.join(args)} failed ({result.returncode}):\n"
            + failure_report(result.stdout, result.stderr)
        )
    return result


NOISE = ("DeprecationWarning", "from click.parser import")  # dbt's, on every run


def failure_report(stdout: str, stderr: str, lines: int = 40) -> str:
    """What a failed step said, without the warnings every run prints: the last lines of
    its output (where dbt reports a failing test) and of its log (Meltano's, tracebacks)."""
    parts = []
    for name, text in (("output", stdout), ("log", stderr)):
        kept = [line for line in (text or "").splitlines() if not any(n in line for n in NOISE)]
        if kept:
            parts.append(f"--- its {name}:\n" + "\n".join(kept[-lines:]))
    return "\n".join(parts) or "(it printed nothing)"


def meltano_state(state_id: str, env: dict[str, str]) -> dict:
    result = meltano("state", "get", state_id, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_until_healthy(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until the receiver on ``port`` answers ``/healthz`` (RuntimeError if it exits first)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start") from None
            time.sleep(0.2)


def meltano_receiver(env: dict[str, str], port: int) -> subprocess.Popen:
    """`meltano invoke tap-cronofy:receive` in a session of its own (``stop_receiver`` ends
    Meltano and the receiver together), once it answers."""
    log = tempfile.NamedTemporaryFile(prefix="receiver-", suffix=".log", delete=False)  # noqa: SIM115
    receiver = subprocess.Popen(
        [str(BIN / "meltano"), "invoke", "tap-cronofy:receive"],
        cwd=ROOT,
        env={**env, "TAP_CRONOFY_PUSH_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    receiver.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    try:
        wait_until_healthy(port, receiver)
    except RuntimeError:
        stop_receiver(receiver)
        raise
    return receiver


def stop_receiver(receiver: subprocess.Popen, how: int = signal.SIGTERM) -> str:
    """Stop Meltano and the receiver (SIGTERM as a service manager does, SIGINT as Ctrl-C
    does); what they wrote to stderr."""
    os.killpg(receiver.pid, how)
    receiver.wait(timeout=30)
    path = Path(getattr(receiver, "log_path", os.devnull))
    text = path.read_text(errors="replace") if path.is_file() else ""
    if path.is_file() and path.name.startswith("receiver-"):
        path.unlink()
    return text
