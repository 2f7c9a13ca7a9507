"""Child process: the baseline. Plain requests + json fetch the same pages and write each
record as a JSON line to /dev/null; prints {"records", "seconds"}."""

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
    params = {
        "tzid": "Etc/UTC",
        "include_ids": "true",
        "include_free": "true",
        "include_managed": "true",
    }
    records = 0
    started = time.perf_counter()
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
    print(json.dumps({"records": records, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
