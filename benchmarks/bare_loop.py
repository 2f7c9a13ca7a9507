"""Child process: the baseline. Plain requests + json fetch the same pages and write each
record as a JSON line to /dev/null; prints {"records", "seconds", "cpu"}."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import requests


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    token = config["accounts"][0]["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    params: dict[str, str] | None = {
        "tzid": "Etc/UTC",
        "include_ids": "true",
        "include_free": "true",
        "include_managed": "true",
    }
    records = 0
    started, cpu = time.perf_counter(), time.process_time()
    with open("/dev/null", "w", encoding="utf-8") as sink:
        url: str | None = f"{config['api_url']}/v1/free_busy"
        while url:
            response = session.get(url, params=params, timeout=60)
            response.raise_for_status()
            body = response.json()
            for period in body["free_busy"]:
                sink.write(json.dumps(period) + "\n")
                records += 1
            url, params = body["pages"].get("next_page"), None
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"records": records, "seconds": elapsed, "cpu": cpu}))


if __name__ == "__main__":
    main()
