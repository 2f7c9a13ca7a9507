"""Push notifications of the simulated Cronofy: per-account channels, and signed POSTs to
their callback URLs, with delivery faults (duplicates, delays, reordering, failures that
are retried) set as knobs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

MAX_CHANNELS = 128  # per account, as Cronofy documents
# The simulator posts only to this machine: a callback URL elsewhere (a README example, a
# real receiver's public URL) counts as a failed delivery and is never contacted.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Delivery:
    url: str
    body: bytes
    due: float  # wall clock
    attempts: int = 0
    kind: str = "change"
    account_id: str = ""


@dataclass
class Knobs:
    duplicates: int = 0  # extra copies of every notification
    delay: float = 0.0  # seconds before a notification is first sent
    reorder: bool = False  # deliver each batch of waiting notifications newest first
    fail_first: int = 0  # attempts of each notification that fail before one goes through
    retry_seconds: float = 0.05  # wait before a failed delivery is tried again
    max_attempts: int = 8
    enabled: bool = True


@dataclass
class Stats:
    sent: int = 0  # POSTs answered 2xx
    failed: int = 0  # attempts that failed (fault knob, refused connection, non-2xx)
    given_up: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Notifier:
    """Sends notifications from one background thread; ``flush`` waits until none wait."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.knobs = Knobs()
        self.stats = Stats()
        self._queue: list[Delivery] = []
        self._cond = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None  # started by the first notification

    def sign(self, body: bytes) -> str:
        digest = hmac.new(self.secret.encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def send(self, channel: dict, account_id: str, notification: dict) -> None:
        if not self.knobs.enabled:
            return
        # Compact, as Cronofy sends them (tests/fixtures/push/: the captured bytes).
        body = json.dumps(
            {"notification": notification, "channel": channel}, separators=(",", ":")
        ).encode()
        due = time.time() + self.knobs.delay
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="sim-push")
                self._thread.start()
            for _ in range(1 + self.knobs.duplicates):
                self._queue.append(
                    Delivery(
                        channel["callback_url"],
                        body,
                        due,
                        kind=notification["type"],
                        account_id=account_id,
                    )
                )
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every notification is delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.time()
                ready = [d for d in self._queue if d.due <= now]
                if not ready:
                    self._cond.wait(0.02)
                    continue
                if self.knobs.reorder:
                    ready.reverse()
                batch = ready
                self._queue = [d for d in self._queue if d.due > now]
                self._busy += len(batch)
            for delivery in batch:
                self._attempt(delivery)
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> None:
        delivery.attempts += 1
        ok = False
        if urllib.parse.urlsplit(delivery.url).hostname not in LOOPBACK:
            with self._cond:
                self.stats.failed += 1
                self.stats.given_up += 1
            return
        if delivery.attempts > self.knobs.fail_first:
            request = urllib.request.Request(
                delivery.url,
                data=delivery.body,
                method="POST",
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Cronofy-HMAC-SHA256": self.sign(delivery.body),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    ok = 200 <= answer.status < 300
            except (urllib.error.URLError, OSError):
                ok = False
        with self._cond:
            if ok:
                self.stats.sent += 1
                self.stats.by_kind[delivery.kind] = self.stats.by_kind.get(delivery.kind, 0) + 1
                return
            self.stats.failed += 1
            if delivery.attempts >= self.knobs.max_attempts:
                self.stats.given_up += 1
                return
            delivery.due = time.time() + self.knobs.retry_seconds
            self._queue.append(delivery)


def new_channel(callback_url: str, filters: dict | None) -> dict:
    return {
        "channel_id": f"chn_{secrets.token_hex(8)}",
        "callback_url": callback_url,
        "filters": filters or {},
        "scheduling_conversations": {},
    }
