"""meltano.yml stays in step with the tap: settings, kinds, defaults, secrets, capabilities."""

from __future__ import annotations

import json

import yaml

from harness.tap import ROOT
from tap_cronofy.settings import CONFIG_SCHEMA
from tests.meltano.test_config import tap_cli


def extractor() -> dict:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    return next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-cronofy")


def expected_kind(name: str, spec: dict) -> str:
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    if "enum" in spec:
        return "options"
    if spec.get("pattern", "").startswith(r"^\d{4}-\d{2}-\d{2}"):
        return "date_iso8601"
    # Seconds are strings to Meltano: its `decimal` kind crashes when the value comes from an
    # environment variable (Meltano 4.4.1), `integer` refuses 0.5; the tap accepts both forms.
    if "number" in types:
        return "string"
    kinds = {"boolean": "boolean", "integer": "integer", "array": "array", "object": "object"}
    return next((kinds[t] for t in types if t in kinds), "string")


def test_every_setting_is_declared_as_the_schema_says():
    declared = {s["name"]: s for s in extractor()["settings"]}
    assert list(declared) == list(CONFIG_SCHEMA["properties"])
    for name, spec in CONFIG_SCHEMA["properties"].items():
        setting = declared[name]
        assert setting.get("label"), name
        assert setting["description"] == spec["description"], name
        assert setting["kind"] == expected_kind(name, spec), name
        assert setting.get("value") == spec.get("default"), name
        assert bool(setting.get("sensitive")) == bool(spec.get("secret")), name
        if "enum" in spec:
            assert [o["value"] for o in setting["options"]] == spec["enum"], name


def test_capabilities_equal_about():
    about = json.loads(tap_cli("--about", "--format=json").stdout)
    assert extractor()["capabilities"] == about["capabilities"]


def test_account_settings_are_one_group_each_and_hourly_runs_are_scheduled():
    groups = extractor()["settings_group_validation"]
    assert groups == [["access_token"], ["accounts"], ["accounts_file"], ["token_store"]]
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    job = next(j for j in project["jobs"] if j["name"] == "cronofy-to-duckdb")
    assert job["tasks"] == ["tap-cronofy target-duckdb"]
    assert {"interval": "@hourly", "job": "cronofy-to-duckdb"}.items() <= project["schedules"][
        0
    ].items()
