"""Child process: the baseline. A plain loop fetches the same pages and writes each record
as a JSON line to /dev/null; prints {"records", "seconds", "cpu"}. With `urllib` as second
argument, the standard library's urllib replaces requests (a leaner HTTP client still)."""

from __future__ import annotations

import json
import sys
import time
import typing as t
import urllib.parse
import urllib.request
from pathlib import Path

import requests

Get = t.Callable[[str, "dict | None"], dict]
PARAMS = {
    "tzid": "Etc/UTC",
    "include_ids": "true",
    "include_free": "true",
    "include_managed": "true",
}


def fetch_requests(token: str) -> Get:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def get(url: str, params: dict | None) -> dict:
        response = session.get(url, params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    return get


def fetch_urllib(token: str) -> Get:
    def get(url: str, params: dict | None) -> dict:
        if params:
            url = f"{url}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    return get


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    token = config["accounts"][0]["access_token"]
    get = (fetch_urllib if sys.argv[2:] == ["urllib"] else fetch_requests)(token)
    params: dict[str, str] | None = dict(PARAMS)
    records = 0
    started, cpu = time.perf_counter(), time.process_time()
    with open("/dev/null", "w", encoding="utf-8") as sink:
        url: str | None = f"{config['api_url']}/v1/free_busy"
        while url:
            body = get(url, params)
            for period in body["free_busy"]:
                sink.write(json.dumps(period) + "\n")
                records += 1
            url, params = body["pages"].get("next_page"), None
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"records": records, "seconds": elapsed, "cpu": cpu}))


if __name__ == "__main__":
    main()
