"""The shipped HTTPS front (deploy/nginx/cronofy-receiver.conf) with a self-signed
certificate, in front of the real receiver: signed notifications over HTTPS, and the
attacks the front must stop before they reach the receiver."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from harness.project import free_port
from harness.tap import ROOT, change_notification, start_receiver
from tap_cronofy.changelog import ChangeLog
from tap_cronofy.push.signature import HEADER, sign

SECRET = "front-secret-456"
PATH = "/cronofy/notifications"


@pytest.fixture
def front(tmp_path):
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if nginx is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed: .ci/run should have installed it")
        pytest.skip("nginx (Debian's package) is not installed on this machine")
    log_path = tmp_path / "changes.db"
    receiver, host, port = start_receiver(SECRET, log_path)
    upstream = f"{host}:{port}"
    ChangeLog(str(log_path)).add_channel("chn_1", "acc_1", "https://localhost" + PATH, 0)
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(prefix / "key.pem"),
            "-out",
            str(prefix / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    conf = fill(
        (ROOT / "deploy" / "nginx" / "cronofy-receiver.conf").read_text(),
        PREFIX=prefix,
        LISTEN=port,
        SERVER_NAME="localhost",
        CERT=prefix / "cert.pem",
        KEY=prefix / "key.pem",
        RECEIVER=upstream,
        NOTIFY_PATH=PATH,
    )
    (prefix / "nginx.conf").write_text("daemon off;\n" + conf)
    proxy = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proxy.poll() is None, proxy.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
    context = ssl.create_default_context(cafile=str(prefix / "cert.pem"))
    yield port, context, log_path, prefix
    proxy.send_signal(signal.SIGQUIT)
    proxy.wait(timeout=20)
    receiver.send_signal(signal.SIGTERM)
    receiver.communicate(timeout=20)


def fill(template: str, **values: object) -> str:
    """As the manual's envsubst line does: only the named ${...} values; nginx's own
    variables stay."""
    for name, value in values.items():
        template = template.replace("${" + name + "}", str(value))
    assert "${" not in template.split("events")[1], "every value filled"
    return template


def notify(port: int, context, n: int, path: str = PATH) -> int:
    body = change_notification(n)
    request = urllib.request.Request(
        f"https://localhost:{port}{path}", data=body, headers={HEADER: sign(body, SECRET)}
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def raw(port: int, context, request: bytes) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="localhost") as conn,
    ):
        conn.sendall(request)
        return conn.recv(300)


def test_signed_notifications_arrive_over_https_and_nothing_else_passes(front):
    port, context, log_path, _ = front
    assert [notify(port, context, n) for n in range(3)] == [200, 200, 200]
    assert ChangeLog(str(log_path)).position() == 3
    assert notify(port, context, 9, path="/admin") == 404, "only the notification path"
    with urllib.request.urlopen(f"https://localhost:{port}/healthz", context=context) as answer:
        assert json.loads(answer.read()) == {"ok": True, "position": 3}
    with pytest.raises(urllib.error.HTTPError) as plain:  # plain HTTP: refused
        urllib.request.urlopen(f"http://localhost:{port}{PATH}", data=b"{}", timeout=5)
    assert plain.value.code == 400
    assert ChangeLog(str(log_path)).position() == 3


def test_the_front_refuses_huge_bodies_and_ambiguous_framing(front):
    port, context, log_path, _ = front
    huge = raw(
        port,
        context,
        f"POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 209715200\r\n\r\n".encode(),
    )
    assert huge.startswith(b"HTTP/1.1 413"), huge
    both = raw(
        port,
        context,
        f"POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode(),
    )
    assert both.startswith(b"HTTP/1.1 400"), both
    assert ChangeLog(str(log_path)).position() == 0


def test_slow_clients_do_not_stop_notifications_behind_the_front(front):
    port, context, log_path, _ = front
    slow = []
    try:
        for _ in range(150):
            plain = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn = context.wrap_socket(plain, server_hostname="localhost")
            conn.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHo")
            slow.append(conn)
        assert [notify(port, context, n) for n in range(6)] == [200] * 6
    finally:
        for conn in slow:
            conn.close()
    assert ChangeLog(str(log_path)).position() == 6
