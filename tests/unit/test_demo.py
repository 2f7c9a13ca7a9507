"""The demo's own decisions: what a failed step shows, what a run loaded per stream."""

from __future__ import annotations

from demo.run_demo import loaded_per_stream
from harness.project import failure_report


def test_a_failed_step_shows_its_output_and_log_without_deprecation_noise():
    stdout = "1 of 2 PASS\n2 of 2 FAIL 5 union_never_exceeds_the_sum\nDone. ERROR=1\n"
    stderr = (
        "/x/dbt/cli/options.py:6: DeprecationWarning: 'parser.OptionParser' is deprecated\n"
        "  from click.parser import OptionParser, ParsingState\n"
        "meltano Block run failed\n"
    )
    report = failure_report(stdout, stderr)
    assert "FAIL 5 union_never_exceeds_the_sum" in report, "dbt reports on stdout"
    assert "Block run failed" in report
    assert "DeprecationWarning" not in report and "click.parser" not in report
    assert report.index("--- its output:") < report.index("--- its log:")
    assert failure_report("", "") == "(it printed nothing)"
    many = "\n".join(f"line {n}" for n in range(100))
    assert failure_report(many, "").splitlines()[1:] == [f"line {n}" for n in range(60, 100)]


def test_every_stream_is_listed_with_what_the_run_loaded():
    log = (
        "INFO Summary free_busy: 108 records from 2 accounts (6 pages)\n"
        "INFO Summary accounts: 1 record\n"
        "INFO Summary run: 8 requests to Cronofy\n"
    )
    assert loaded_per_stream(log) == [
        ("free_busy", 108),
        ("calendars", 0),
        ("accounts", 1),
        ("scheduling_requests", 0),
    ]


def test_the_chart_draws_every_name_the_simulator_gives_its_accounts(tmp_path):
    """Matplotlib's own fonts lack CJK glyphs: the shipped subset draws them (no glyph
    missing when the chart is rendered, no stand-in label)."""
    import datetime as dt
    import warnings

    from demo import chart
    from simulator import Simulator

    names = sorted({a.name for a in Simulator(accounts=8, events_per_account=0).accounts.values()})
    assert any(ord(ch) > 0x3000 for name in names for ch in name), "a CJK name is among them"
    family = chart.with_cjk_fallback()
    assert all(chart.drawable(name, family) for name in names)
    assert not chart.drawable("龍", family), "a glyph no font here has is not drawable"
    days = [dt.date(2026, 11, 30), dt.date(2026, 12, 7)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart.png(days, {name: [1.0, 2.0] for name in names}, tmp_path / "chart.png")
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not missing, missing
