"""The demo's own decisions: what a failed step shows, what a run loaded per stream."""

from __future__ import annotations

from demo.project import failure_report
from demo.run_demo import loaded_per_stream


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
