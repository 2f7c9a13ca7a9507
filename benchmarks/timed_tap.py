"""Child process: run the tap in-process against a config, output to /dev/null, and print
{"records", "seconds", "cpu"} for the sync alone (imports and start-up excluded); "cpu" is
the process's CPU seconds (every thread), which rate-limit sleeps and network waits do not
inflate."""

from __future__ import annotations

import json
import os
import sys
import time
import typing as t
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    config_path, catalog_path, variant = sys.argv[1], sys.argv[2], sys.argv[3]
    from singer_sdk.helpers.conform import TypeConformanceLevel
    from singer_sdk.io_base import SingerWriter

    from tap_cronofy.streams import FreeBusyStream
    from tap_cronofy.tap import TapCronofy

    tap_class: type[TapCronofy] = TapCronofy
    if variant in ("sdk-default-writer", "sdk-defaults"):
        # The SDK's default writer in place of the tap's, to compare the two.
        default_writer = {"message_writer_class": SingerWriter}
        derived = type("DefaultWriterTap", (TapCronofy,), default_writer)
        tap_class = t.cast("type[TapCronofy]", derived)
    if variant == "sdk-defaults":
        FreeBusyStream.TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.RECURSIVE

    config = json.loads(Path(config_path).read_text())
    catalog = json.loads(Path(catalog_path).read_text())
    real_stdout = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    tap = tap_class(config=config, catalog=catalog)
    counted = {"records": 0}
    original = FreeBusyStream._write_record_message

    def counting(self: FreeBusyStream, record: dict) -> None:
        counted["records"] += 1
        original(self, record)

    # Counts what the SDK writes, independently of the tap's own tallies.
    setattr(FreeBusyStream, "_write_record_message", counting)  # noqa: B010
    started, cpu = time.perf_counter(), time.process_time()
    tap.sync_all()
    writer = tap.message_writer  # the tap's writer holds its last STATE until finish()
    if end := getattr(writer, "finish", None) or getattr(writer, "flush", None):
        end()
    sys.stdout.flush()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    os.dup2(real_stdout, 1)
    print(json.dumps({"records": counted["records"], "seconds": elapsed, "cpu": cpu}), flush=True)


if __name__ == "__main__":
    main()
