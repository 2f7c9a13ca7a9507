"""HTTP front of the simulator: the Cronofy endpoints plus a ``/_sim`` control API."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from simulator.core import APIError, Fault, Simulator


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY the body waits ~40 ms for
    # the client's delayed ACK (Nagle), on every small answer.
    disable_nagle_algorithm = True
    server: SimulatorServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet; the request log is in Simulator.requests

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header follows the simulator clock (which may be skewed)."""
        return email.utils.formatdate(
            self.sim.now() if timestamp is None else timestamp, usegmt=True
        )

    @property
    def sim(self) -> Simulator:
        return self.server.sim

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_PATCH(self) -> None:
        self.handle_any("PATCH")

    def do_DELETE(self) -> None:
        self.handle_any("DELETE")

    # Plumbing

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        return value[7:] if value.startswith("Bearer ") else None

    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{self.headers.get('Host') or f'{host!s}:{port}'}"

    def send_json(self, status: int, body: object, headers: dict | None = None) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        if (entry := getattr(self, "_entry", None)) is not None:
            entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def handle_any(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self.read_body()
        self._entry = None
        if url.path.startswith("/_sim"):
            self.control(method, url.path, body)
            return
        token = self.bearer()
        account = self.sim.account_for_token(token)
        # The logged entry itself: send_json records the answer's status in it.
        entry: dict = {
            "status": None,
            "method": method,
            "path": url.path,
            "query": url.query,
            "params": parse_qs(url.query, keep_blank_values=True),
            "authorization": self.headers.get("Authorization"),
            "account_id": account.account_id if account else None,
            "body": body.decode("utf-8", "replace") if self.sim.log_bodies else None,
            "at": time.time(),
        }
        self._entry = entry
        with self.sim.lock:
            self.sim.requests.append(entry)
        if self.sim.latency:
            time.sleep(self.sim.latency)
        fault = self.sim.take_fault(url.path, account.account_id if account else None, method)
        if fault and self.inject(fault):
            return
        if limited := self.sim.rate_limited():
            self.send_json(limited.status, limited.body, limited.headers)
            return
        try:
            status, answer = self.route(method, url.path, url.query, body, token)
        except APIError as error:
            self.send_json(error.status, error.body, error.headers)
            return
        if account is not None and url.path.startswith("/v1/free_busy"):
            corrupt = self.sim.corruptions.get(account.account_id)
            if corrupt is not None:
                answer = corrupt(json.loads(t.cast(bytes, answer)))
        if status == 302:  # the authorization page sends the browser on
            if self._entry is not None:
                self._entry["status"] = 302
            self.send_response(302)
            self.send_header("Location", t.cast(dict, answer)["location"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_json(status, answer)

    def inject(self, fault: Fault) -> bool:
        """Apply a fault; True when it replaced the answer."""
        kind = fault.kind
        if kind == "delay":
            time.sleep(fault.seconds)
            return False
        if kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body = fault.body if fault.body is not None else {"error": "injected"}
            self.send_json(fault.status, body, headers)
            return True
        if kind == "redirect":
            if self._entry is not None:
                self._entry["status"] = 302
            self.send_response(302)
            self.send_header("Location", fault.location or "http://127.0.0.2/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        if kind == "drop":
            self.close_connection = True
            self.connection.close()
            return True
        if kind in ("truncate", "garbage"):
            if self._entry is not None:
                self._entry["status"] = 200
            payload = (
                b'{"pages": {"current": 1, "total": 1}, "free_busy": [{"calend'
                if kind == "truncate"
                else b"<html>Bad Gateway</html>"
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) * (4 if kind == "truncate" else 1)))
            self.end_headers()
            self.wfile.write(payload)
            if kind == "truncate":
                self.close_connection = True
                self.wfile.flush()
                self.connection.close()
            return True
        return False

    def route(
        self, method: str, path: str, query: str, body: bytes, token: str | None
    ) -> tuple[int, object]:
        if method == "GET" and path == "/v1/free_busy":
            return 200, self.sim.free_busy(
                token, parse_qs(query, keep_blank_values=True), self.base_url()
            )
        if method == "GET" and path.startswith("/v1/free_busy/pages/"):
            return 200, self.sim.next_page(token, path.rsplit("/", 1)[1], self.base_url())
        if method == "GET" and path == "/v1/calendars":
            return 200, self.sim.calendars(self.sim.authorize(token))
        if method == "GET" and path == "/v1/userinfo":
            return 200, self.sim.userinfo(self.sim.authorize(token))
        if method == "GET" and path == "/oauth/authorize":
            query_args = {k: v[0] for k, v in parse_qs(query).items()}
            return 302, {"location": self.sim.authorize_url(query_args)}
        if method == "POST" and path == "/oauth/token":
            return 200, self.sim.refresh(parse_body(body, self.headers.get("Content-Type")))
        if path == "/v1/channels" and method == "POST":
            return 200, self.sim.create_channel(token, parse_body(body, "application/json"))
        if path == "/v1/channels" and method == "GET":
            return 200, self.sim.list_channels(token)
        if path.startswith("/v1/channels/") and method == "DELETE":
            return 202, self.sim.close_channel(token, path.rsplit("/", 1)[1])
        if method == "POST" and path == "/v1/scheduling_requests/query":
            return 200, self.sim.query_scheduling_requests(
                token, parse_body(body, "application/json")
            )
        raise APIError(404, {"error": "not_found"})

    # Control API, for the demo, benchmarks and a standalone simulator

    def control(self, method: str, path: str, raw: bytes) -> None:
        sim = self.sim
        data = json.loads(raw or b"{}")
        parts = path.strip("/").split("/")[1:]
        try:
            result = self.control_action(sim, method, parts, data)
        except (KeyError, TypeError, ValueError) as exc:
            self.send_json(400, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self.send_json(200, result)

    @staticmethod
    def control_action(sim: Simulator, method: str, parts: list[str], data: dict) -> object:
        head = parts[0] if parts else ""
        if head == "accounts" and method == "GET":
            return [
                {
                    "account_id": a.account_id,
                    "access_token": a.access_token,
                    "refresh_token": a.refresh_token,
                    "calendars": a.calendars,
                    "events": len(a.events),
                }
                for a in sim.accounts.values()
            ]
        if head == "stats":
            return {"rate_limited": sim.rate_limited_count, "requests": len(sim.requests)}
        if head == "app":
            return {"client_id": sim.client_id, "client_secret": sim.client_secret}
        if head == "reset" and method == "POST":
            sim.reset(**data)
            return {"accounts": len(sim.accounts)}
        if head == "config" and method == "POST":
            for name in (
                "latency",
                "page_size",
                "clock_offset",
                "next_page_host",
                "scheduler_plan",
                "rotate_refresh_tokens",
                "log_bodies",
                "sync_lag",
                "token_lifetime",
                "embed_userinfo",
                "calendars_sub",
                "calendars_optional",
                "send_retry_after",
            ):
                if name in data:
                    setattr(sim, name, data[name])
            if "rate_limits" in data:
                sim.rate_limits = [(int(n), float(w)) for n, w in data["rate_limits"]]
            return {"ok": True}
        if head == "advance" and method == "POST":
            sim.advance(float(data.get("seconds", 0)))
            return {"now": sim.now()}
        if head == "events" and method == "POST":
            if "count" in data:
                made = sim.add_events(data["account_id"], int(data["count"]))
                return {"created": [e.event_uid for e in made]}
            account_id = data.pop("account_id")
            return dataclasses.asdict(sim.create_event(account_id, **data))
        if head == "calendars" and method == "POST":
            return {
                "calendar_id": sim.add_calendar(data["account_id"], data.get("name", "Projects"))
            }
        if head == "calendars" and method == "PATCH":
            sim.rename_calendar(parts[1], parts[2], data["name"])
            return {"ok": True}
        if head == "series" and method == "POST":
            account_id = data.pop("account_id")
            return dataclasses.asdict(sim.create_series(account_id, **data))
        if head == "series" and method == "PATCH":
            return dataclasses.asdict(sim.modify_series(parts[1], parts[2], **data))
        if head == "events" and method == "PATCH":
            return dataclasses.asdict(sim.modify_event(parts[1], parts[2], **data))
        if head == "events" and method == "DELETE":
            return dataclasses.asdict(sim.delete_event(parts[1], parts[2]))
        if head == "events" and method == "GET":
            return [dataclasses.asdict(e) for e in sim.events_of(parts[1])]
        if head == "faults" and method == "POST":
            for spec in data if isinstance(data, list) else [data]:
                sim.add_fault(**spec)
            return {"faults": len(sim.faults)}
        if head == "faults" and method == "DELETE":
            sim.faults.clear()
            return {"faults": 0}
        if head == "changes" and method == "POST":  # one new event on each account
            for account_id in data["account_ids"]:
                sim.create_event(account_id)
            return {"created": len(data["account_ids"])}
        if head == "push" and method == "POST" and parts[1:] == ["flush"]:
            return {"flushed": sim.notifier.flush(float(data.get("timeout", 30)))}
        if head == "push" and method == "POST" and parts[1:] == ["notify"]:
            return {"sent": sim.notify(data["account_id"], data.get("type", "change"))}
        if head == "push" and method == "POST":
            for name, value in data.items():
                if not hasattr(sim.notifier.knobs, name):
                    raise KeyError(name)
                setattr(sim.notifier.knobs, name, value)
            return dataclasses.asdict(sim.notifier.knobs)
        if head == "push" and method == "GET":
            return dataclasses.asdict(sim.notifier.stats)
        if head == "channels" and method == "GET":
            return list(sim.accounts[parts[1]].channels.values())
        if head == "expire_token" and method == "POST":
            sim.expire_access_token(data["account_id"])
            return {"ok": True}
        if head == "expire_pages" and method == "POST":
            sim.expire_page_tokens()
            return {"ok": True}
        if head == "scheduling_requests" and method == "GET":
            return sorted(sim.scheduling, key=lambda i: sim._created[i])
        if head == "scheduling_requests" and method == "POST":
            return sim.set_slot_selection(parts[1], data["slot_selection"])
        if head == "requests" and method == "GET":
            return [{k: v for k, v in r.items() if k != "authorization"} for r in sim.requests]
        if head == "requests" and method == "DELETE":
            sim.requests.clear()
            return {"ok": True}
        raise KeyError("/".join(parts))


def parse_body(body: bytes, content_type: str | None) -> dict:
    if content_type and "json" in content_type:
        try:
            value = json.loads(body or b"{}")
        except ValueError as exc:
            raise APIError(400, {"error": "invalid_request"}) from exc
        return value if isinstance(value, dict) else {}
    return {k: v[-1] for k, v in parse_qs(body.decode()).items()}


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # dropped connections are deliberate faults, not errors worth a traceback

    def __init__(self, sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), Handler)
        self.sim = sim
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SimulatorServer:
        self.thread = threading.Thread(target=self.serve_forever, daemon=True, name="cronofy-sim")
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
