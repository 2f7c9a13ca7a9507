"""Run inside z3 target-bigquery's own venv: its column types for the catalog (no network)."""

import json
import sys

from target_bigquery.core import SchemaTranslator


def describe(field):
    inner = {f.name.strip("`"): describe(f) for f in field.fields}
    return {"type": field.field_type, "mode": field.mode, **({"fields": inner} if inner else {})}


with open(sys.argv[1]) as handle:
    catalog = json.load(handle)
types = {}
for stream in catalog["streams"]:
    fields = SchemaTranslator(stream["schema"], transforms={"quote": True})
    types[stream["tap_stream_id"]] = {
        f.name: describe(f) for f in fields.translated_schema_transformed
    }
print(json.dumps({"types": types}))
