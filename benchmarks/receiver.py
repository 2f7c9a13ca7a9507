"""`make bench-receiver`: signed notifications from concurrent clients into the real
receiver (`tap-cronofy-push receive`, SQLite change log), then the same with the receiver
killed (-9) mid-burst and restarted. Prints, for each:

receiver: N notifications, X/s, p50 A ms, p99 B ms, acknowledged-but-missing 0, duplicates 0

`acknowledged-but-missing`: notifications answered 2xx that the log does not hold after
the run; `duplicates`: bodies recorded more than once. BENCH_TREE runs another checkout's
receiver (to measure a before and an after in one run)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.tap import start_receiver
from tap_cronofy.changelog import ChangeLog
from tap_cronofy.push.signature import HEADER, sign

TREE = Path(os.environ.get("BENCH_TREE") or Path(__file__).resolve().parent.parent)
SECRET = "bench-secret"
COUNT = int(os.environ.get("BENCH_NOTIFICATIONS", "3000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))


def start(log: Path) -> tuple[subprocess.Popen, int]:
    receiver, _, port = start_receiver(SECRET, log, "--threads", "8", cwd=TREE)
    assert receiver.stderr is not None
    threading.Thread(target=receiver.stderr.read, daemon=True).start()
    return receiver, port


def body(n: int) -> bytes:
    return json.dumps(
        {
            "notification": {"type": "change", "changes_since": f"2026-12-01T10:00:00.{n:06d}Z"},
            "channel": {"channel_id": f"chn_{n % 50}"},
        }
    ).encode()


def burst(
    port_of: Callable[[], int], numbers: list[int], acked: list[int], latencies: list[float]
) -> None:
    """One client: its notifications in order, on one connection (re-made after a failure)."""
    conn = None
    for n in numbers:
        for _ in range(200):  # while the receiver restarts
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port_of(), timeout=10)
                raw = body(n)
                started = time.perf_counter()
                conn.request("POST", "/hook", body=raw, headers={HEADER: sign(raw, SECRET)})
                answer = conn.getresponse()
                answer.read()
                if 200 <= answer.status < 300:
                    latencies.append(time.perf_counter() - started)
                    acked.append(n)
                    break
            except OSError:
                conn = None
                time.sleep(0.05)


def run(kill: bool) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "changes.db")
        setup = ChangeLog(str(log))
        for channel in range(50):
            setup.add_channel(f"chn_{channel}", f"acc_{channel}", "https://x", 0)
        receiver, port = start(log)
        current = {"port": port}
        acked: list[int] = []
        latencies: list[float] = []
        clients = [
            threading.Thread(
                target=burst,
                args=(lambda: current["port"], list(range(c, COUNT, CLIENTS)), acked, latencies),
            )
            for c in range(CLIENTS)
        ]
        started = time.perf_counter()
        for client in clients:
            client.start()
        if kill:
            while len(acked) < COUNT // 2:
                time.sleep(0.01)
            receiver.send_signal(signal.SIGKILL)
            receiver.wait()
            receiver, current["port"] = start(log)
        for client in clients:
            client.join()
        elapsed = time.perf_counter() - started
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=20)
        with sqlite3.connect(log) as db:
            held = [row[0] for row in db.execute("SELECT changes_since FROM cronofy_notifications")]
        recorded = {int(since[20:26]) for since in held}
        missing = len(set(acked) - recorded)
        duplicates = len(held) - len(set(held))
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        rate = len(acked) / elapsed
        return (
            f"receiver: {len(acked)} notifications, {rate:.0f}/s, p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms, acknowledged-but-missing {missing}, duplicates {duplicates}"
        )


if __name__ == "__main__":
    print(run(kill=False), flush=True)
    print("after kill -9 mid-burst and a restart:", flush=True)
    print(run(kill=True), flush=True)
