"""The README's example record of each stream has the shape the tap emits (the same
fields, nested alike, as a record of a real run against the simulator) and is valid
under the stream's schema in catalog.json."""

from __future__ import annotations

import json
import re

import jsonschema

from harness import docs
from harness.tap import ROOT, run_tap

STREAMS = ["free_busy", "calendars", "accounts", "scheduling_requests"]


def examples() -> dict[str, dict]:
    section = docs.page("streams.md")
    found = re.findall(r"Example (?:`(\w+)` )?record[^\n]*\n\n```json\n(.*?)```", section, re.S)
    assert len(found) == len(STREAMS)
    out = {}
    for (named, body), default in zip(found, STREAMS, strict=True):
        out[named or default] = json.loads(body)
    assert list(out) == STREAMS
    return out


def shape(value: object) -> object:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def test_each_example_record_is_shaped_as_the_tap_emits_and_valid(sim):
    catalog = json.loads((ROOT / "catalog.json").read_text())
    schemas = {s["tap_stream_id"]: s["schema"] for s in catalog["streams"]}
    run = run_tap(sim.tap_config(sim.url))
    assert run.returncode == 0, run.stderr[-2000:]
    emitted: dict[str, dict] = {}
    for message in run.messages:
        if message["type"] == "RECORD":
            emitted.setdefault(message["stream"], message["record"])
    for stream, example in examples().items():
        jsonschema.validate(example, schemas[stream])
        real = emitted[stream]
        if stream == "scheduling_requests":  # optional fields are absent when unsent
            pending = next(
                m["record"]
                for m in run.messages
                if m["type"] == "RECORD"
                and m["stream"] == stream
                and m["record"]["slot_selection"] == "pending"
            )
            real = pending
        assert shape(example) == shape(real), stream
