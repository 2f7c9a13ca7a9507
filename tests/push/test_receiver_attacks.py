"""The real receiver (`tap-cronofy-push receive`, waitress) under the attacks an
unauthenticated client on the internet can make."""

from __future__ import annotations

import signal
import socket
import time
import urllib.request

import pytest

from harness.tap import change_notification, start_receiver
from tap_cronofy.changelog import ChangeLog
from tap_cronofy.push.signature import HEADER, sign

SECRET = "rx-secret-123"


@pytest.fixture
def receiver(tmp_path):
    log_path = tmp_path / "changes.db"
    process, host, port = start_receiver(SECRET, log_path)
    ChangeLog(str(log_path)).add_channel("chn_1", "acc_1", "https://hooks.example", 0)
    yield host, port, log_path
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)


def signed_post(host: str, port: int, n: int) -> int:
    body = change_notification(n)
    request = urllib.request.Request(
        f"http://{host}:{port}/hook", data=body, headers={HEADER: sign(body, SECRET)}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def test_a_huge_body_is_refused_before_it_is_sent(receiver):
    """waitress refuses by Content-Length at once: nothing is read, nothing spooled."""
    host, port, _ = receiver
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(
            b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n"
            b"Content-Type: application/json\r\n\r\n" + b"{" * 1024
        )
        answer = conn.recv(200)
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_a_huge_chunked_body_is_cut_off(receiver):
    host, port, log_path = receiver
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (16384, b"a" * 16384)
        sent, cut = 0, False
        try:
            while sent < 8 * 1024 * 1024:
                conn.sendall(chunk)
                sent += 16384
        except (BrokenPipeError, ConnectionResetError):
            cut = True  # the server closed the connection on us
        conn.settimeout(5)
        try:
            answer = conn.recv(200)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    refused = answer.startswith(b"HTTP/1.1 413")
    assert refused or (cut and sent < 8 * 1024 * 1024), (sent, cut, answer[:80])
    assert ChangeLog(str(log_path)).position() == 0


def test_slow_clients_do_not_stop_notifications_being_answered(receiver):
    """150 connections dribbling a header byte by byte: signed notifications are still
    answered (waitress reads them asynchronously; its default connection limit was 100)."""
    host, port, log_path = receiver
    slow = []
    try:
        for _ in range(150):
            conn = socket.create_connection((host, port), timeout=10)
            conn.sendall(b"POST /hook HTTP/1.1\r\nHo")
            slow.append(conn)
        time.sleep(0.5)
        started = time.monotonic()
        assert [signed_post(host, port, n) for n in range(6)] == [200] * 6
        assert time.monotonic() - started < 10
        for conn in slow:
            conn.sendall(b"s")
    finally:
        for conn in slow:
            conn.close()
    assert ChangeLog(str(log_path)).position() == 6
