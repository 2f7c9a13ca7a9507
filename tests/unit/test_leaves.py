"""The leaf modules, in-process: secret masking, the rate limiter, the prefetcher, report."""

from __future__ import annotations

import itertools
import logging
import threading

import pytest

from tap_cronofy.prefetch import OrderedPrefetcher
from tap_cronofy.progress import Progress
from tap_cronofy.ratelimit import SlidingWindowLimiter
from tap_cronofy.redact import MASK, SecretRegistry, install_log_redaction
from tap_cronofy.report import FIRST_SYNC_WARN_AT, first_sync_warning, quota_warning
from tap_cronofy.statecodec import FORMAT, FORMAT_KEY


def test_secrets_are_masked_longest_first():
    registry = SecretRegistry()
    registry.add("abcd1234")
    registry.add("abcd1234-extended")
    registry.add("xy")  # too short to be a token: never masked
    text = registry.redact("token=abcd1234-extended other=abcd1234 xy")
    assert text == f"token={MASK} other={MASK} xy"


def test_log_records_are_masked_including_tracebacks(caplog):
    from tap_cronofy.redact import SECRETS

    SECRETS.add("very-secret-token-42")
    install_log_redaction()
    logger = logging.getLogger("tap-cronofy-test")
    with caplog.at_level(logging.INFO):
        logger.info("sending %s", "very-secret-token-42")
        try:
            raise ValueError("bad token very-secret-token-42")
        except ValueError:
            logger.exception("failed")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "very-secret-token-42" not in text
    assert MASK in text


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_sliding_window_never_exceeds_any_window():
    clock = FakeClock()
    limiter = SlidingWindowLimiter([(5, 1.0), (12, 10.0)], clock=clock.time, sleep=clock.sleep)
    starts = []
    for _ in range(40):
        with limiter.request():  # answered at once
            starts.append(clock.now)
    for limit, window in ((5, 1.0), (12, 10.0)):
        for i, start in enumerate(starts):
            inside = [s for s in starts[i:] if s < start + window]
            assert len(inside) <= limit
    # and it does not wait longer than needed: 40 starts at 12 per 10 s take 30 s
    assert starts[-1] == pytest.approx(30.0)


def test_requests_in_flight_count_until_answered():
    """A request counts from when it is allowed until its answer: a slow answer holds its
    place, so a late-sent request can never make the server see more than the limit."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter([(2, 1.0)], clock=clock.time, sleep=clock.sleep)
    first, second = limiter.request(), limiter.request()
    first.__enter__()
    second.__enter__()
    clock.now = 5.0  # long past the window, but neither answer is back
    waits: list[float] = []

    def answered_meanwhile(timeout: float | None = None) -> bool:
        waits.append(timeout)
        clock.now += 0.25  # the second answer arrives a quarter second later
        second.__exit__(None, None, None)
        return True

    limiter._cond.wait = answered_meanwhile  # type: ignore[method-assign]
    limiter.waited_seconds = 10.0  # waited earlier in the run
    with limiter.request():
        # the answer came back at 5.25 and holds its place for a window from then
        assert clock.now == pytest.approx(6.25)
    assert waits == [1.0], "the third waited for an answer, not for time"
    assert limiter.waited_seconds == pytest.approx(11.25), "both pauses are added"
    first.__exit__(None, None, None)


def test_waiting_is_counted_once_per_pause():
    clock = FakeClock()
    limiter = SlidingWindowLimiter([(1, 10.0)], clock=clock.time, sleep=clock.sleep)
    for _ in range(3):
        with limiter.request():
            pass
    assert limiter.waited_seconds == pytest.approx(20.0)


def test_margin_and_slack_widen_each_window():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(
        [(1, 10.0)], margin=0.1, slack=0.5, clock=clock.time, sleep=clock.sleep
    )
    with limiter.request():
        pass
    with limiter.request():
        assert clock.now == pytest.approx(11.5)


def test_the_clients_windows_are_widened_by_two_percent_and_a_tenth_of_a_second():
    """The manual's promise (Operating): Cronofy's windows, widened for the clocks."""
    from tap_cronofy.client import CronofyClient
    from tap_cronofy.settings import Settings

    settings = Settings.from_config({"access_token": "t", "requests_per_minute": 300})
    client = CronofyClient(settings, user_agent="test", logger=logging.getLogger("t"))
    (second, per_second), (minute, per_minute) = client.limiter.windows
    assert (second, minute) == (settings.requests_per_second, 300)
    assert per_second == pytest.approx(1.0 * 1.02 + 0.1)
    assert per_minute == pytest.approx(60.0 * 1.02 + 0.1)


def test_prefetcher_keeps_order_and_bounds_lookahead():
    started: list[str] = []
    lock = threading.Lock()

    def produce(key: str):
        with lock:
            started.append(key)
        yield f"{key}-0"  # fits the buffer: a worker is free again at once

    keys = [f"k{n}" for n in range(10)]
    prefetcher = OrderedPrefetcher(keys, produce, workers=3, buffer=2)
    with prefetcher._cond:
        # Every worker held back by the look-ahead, or (were it broken) a fourth key claimed.
        assert prefetcher._cond.wait_for(
            lambda: prefetcher.idle == 3 or prefetcher._next_key > 3, timeout=10
        )
        assert prefetcher._next_key == 3, "at most `workers` keys ahead of the consumer"
    assert sorted(started) == ["k0", "k1", "k2"]
    assert list(prefetcher.items("k0")) == ["k0-0"]
    with prefetcher._cond:  # one consumed: exactly one more may start
        assert prefetcher._cond.wait_for(lambda: prefetcher._next_key >= 4, timeout=10)
        assert prefetcher._cond.wait_for(
            lambda: prefetcher.idle == 3 or prefetcher._next_key > 4, timeout=10
        )
        assert prefetcher._next_key == 4
    out = [item for key in keys[1:] for item in prefetcher.items(key)]
    assert out == [f"{k}-0" for k in keys[1:]]
    assert prefetcher.closed


def test_prefetcher_buffers_at_most_buffer_items_per_key():
    def produce(key: str):
        yield from range(10)

    prefetcher = OrderedPrefetcher(["only", "other"], produce, workers=1, buffer=2)
    assert [q.maxsize for q in prefetcher._queues.values()] == [2, 2]
    assert list(prefetcher.items("only")) == list(range(10))
    assert list(prefetcher.items("other")) == list(range(10))
    assert prefetcher.closed


def test_a_closed_prefetcher_stops_its_workers():
    def produce(key: str):
        yield from range(100)

    prefetcher = OrderedPrefetcher(["a", "b"], produce, workers=2, buffer=1)
    prefetcher.close()
    for thread in prefetcher._threads:
        thread.join(10)
        assert not thread.is_alive()


def test_prefetcher_hands_errors_to_the_consumer():
    def produce(key: str):
        yield key
        if key == "b":
            raise RuntimeError("boom")

    prefetcher = OrderedPrefetcher(["a", "b", "c"], produce, workers=2)
    assert list(prefetcher.items("a")) == ["a"]
    with pytest.raises(RuntimeError, match="boom"):
        list(prefetcher.items("b"))
    assert list(prefetcher.items("c")) == ["c"]


def test_the_quota_warning_needs_waiting_to_be_most_of_the_run_and_shows_the_arithmetic():
    numbers = {"requests": 300, "accounts": 150, "per_minute": 500}
    assert quota_warning(**numbers, waited=29.9, elapsed=60.0) is None
    assert quota_warning(**numbers, waited=0.0, elapsed=0.0) is None
    warning = quota_warning(**numbers, waited=45.0, elapsed=60.0)
    assert warning is not None
    assert "300 requests (2.0 per account, 150 accounts) at 500 requests/minute" in warning
    assert "at least 0.6 minutes; 45 of the run's 60 s were spent waiting" in warning


def test_the_filter_masks_message_args_traceback_and_stack():
    from tap_cronofy.redact import SECRETS, RedactingFilter

    SECRETS.add("secret-token-77")
    try:
        raise ValueError("with secret-token-77 inside")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "sent %s", ("secret-token-77",), exc_info
    )
    record.stack_info = "stack secret-token-77"
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == f"sent {MASK}" and record.args is None
    assert record.exc_text is not None
    assert "secret-token-77" not in record.exc_text and "ValueError" in record.exc_text
    # a stand-in for structured formatters: the same type name, traceback, masked message
    kind, value, tb = record.exc_info
    assert (kind.__name__, kind.__module__, str(value)) == (
        "ValueError",
        "builtins",
        f"with {MASK} inside",
    )
    assert tb is exc_info[2]
    assert record.stack_info == f"stack {MASK}"


def test_a_record_without_secrets_keeps_its_args_and_exception():
    """Formatters read them: the SDK's JSON logging takes a metric from args."""
    from tap_cronofy.redact import SECRETS, RedactingFilter

    SECRETS.add("secret-token-88")
    point = object()
    try:
        raise KeyError("plain")
    except KeyError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "METRIC: %s", (point,), exc_info)
    assert RedactingFilter().filter(record) is True
    assert record.args == (point,) and record.msg == "METRIC: %s"
    assert record.exc_info == exc_info and record.exc_text is None


def test_a_masked_exception_keeps_its_cause_masked_too():
    from tap_cronofy.redact import SECRETS, RedactingFilter

    SECRETS.add("secret-token-99")
    try:
        try:
            raise OSError("refused for secret-token-99")
        except OSError as inner:
            raise RuntimeError("sync failed") from inner
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, exc_info)
    RedactingFilter().filter(record)
    value = record.exc_info[1]
    assert type(value).__name__ == "RuntimeError" and str(value) == "sync failed"
    assert type(value.__cause__).__name__ == "OSError"
    assert str(value.__cause__) == f"refused for {MASK}"
    assert "secret-token-99" not in record.exc_text


def test_a_malformed_record_is_passed_on_untouched():
    from tap_cronofy.redact import RedactingFilter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", ("one",), None)
    assert RedactingFilter().filter(record) is True
    assert record.args == ("one",)


def test_short_values_are_not_secrets_and_redaction_of_empty_text_is_empty():
    registry = SecretRegistry()
    registry.add("abc")
    registry.add(1234)
    registry.add("abcd")
    assert registry.redact("abc abcd") == f"abc {MASK}"
    assert registry.redact("") == ""


def test_install_log_redaction_wraps_the_record_factory_once(monkeypatch):
    from tap_cronofy import redact

    original = logging.getLogRecordFactory()
    monkeypatch.setattr(redact, "_installed", False)  # as in a fresh process
    logging.setLogRecordFactory(logging.LogRecord)  # ... with logging's own factory
    try:
        redact.install_log_redaction()
        installed = logging.getLogRecordFactory()
        assert installed is not logging.LogRecord
        redact.install_log_redaction()
        assert logging.getLogRecordFactory() is installed, "installed once, not wrapped twice"
        redact.SECRETS.add("factory-secret-1")
        record = installed("n", logging.INFO, __file__, 1, "x %s", ("factory-secret-1",), None)
        assert record.getMessage() == f"x {MASK}"
    finally:
        logging.setLogRecordFactory(original)


def test_an_empty_registry_redacts_nothing():
    assert SecretRegistry().redact("plain text") == "plain text"


def test_a_secret_inside_a_longer_one_never_splits_it():
    """Longest first, whatever their alphabetical order: the longer secret is masked whole."""
    registry = SecretRegistry()
    registry.add("abc-token-1")
    registry.add("0-abc-token-1-x")
    assert registry.redact("0-abc-token-1-x and abc-token-1") == f"{MASK} and {MASK}"


def test_prefetcher_defaults_and_daemon_workers():
    def produce(key: str):
        yield key

    prefetcher = OrderedPrefetcher(["a", "b", "c"], produce, workers=1)
    assert [q.maxsize for q in prefetcher._queues.values()] == [2, 2, 2]
    assert len(prefetcher._threads) == 1 and prefetcher._lookahead == 1
    assert all(t.daemon for t in prefetcher._threads), "a stuck worker never blocks exit"
    assert [t.name for t in prefetcher._threads] == ["cronofy-prefetch-0"]
    with prefetcher._cond:  # one worker: one key ahead of the consumer, no more
        assert prefetcher._cond.wait_for(
            lambda: prefetcher.idle == 1 or prefetcher._next_key > 1, timeout=10
        )
        assert prefetcher._next_key == 1
    assert [i for k in "abc" for i in prefetcher.items(k)] == ["a", "b", "c"]


def test_prefetcher_workers_end_cleanly_after_the_last_key(monkeypatch):
    failures: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))

    def produce(key: str):
        yield key

    prefetcher = OrderedPrefetcher(["a", "b"], produce, workers=4)
    assert [i for k in "ab" for i in prefetcher.items(k)] == ["a", "b"]
    for thread in prefetcher._threads:
        thread.join(10)
    assert failures == []


def test_masking_with_thousands_of_secrets_matches_masking_each_one():
    """The prefix index finds the same secrets a plain search for each one would."""
    import random

    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    tokens = ["".join(rng.choice(alphabet) for _ in range(rng.randint(4, 40))) for _ in range(5000)]
    registry = SecretRegistry()
    for token in tokens:
        registry.add(token)
    used = rng.sample(tokens, 50)
    text = " | ".join(f"token={u} x" for u in used)
    masked = registry.redact(text)
    assert not any(u in masked for u in used)
    assert masked == " | ".join(f"token={MASK} x" for _ in used)


def test_secrets_sharing_a_prefix_are_each_masked_longest_first():
    registry = SecretRegistry()
    registry.add("abcd-short")
    registry.add("abcd-short-and-longer")
    registry.add("abcd")
    assert registry.redact("abcd-short-and-longer abcd-short abcd abcdX") == (
        f"{MASK} {MASK} {MASK} {MASK}X"
    )
    assert registry.redact("xabcd-shor") == f"x{MASK}-shor"


def test_a_secret_at_the_very_end_of_a_text_is_masked():
    registry = SecretRegistry()
    registry.add("tail-secret")
    assert registry.redact("ends with tail-secret") == f"ends with {MASK}"
    assert registry.redact("tail-secret") == MASK


# STATE messages: held back, a bounded number per run


def test_checkpoints_fall_after_each_quarter_of_the_accounts_but_the_last():
    from tap_cronofy.output import checkpoint_due

    assert [d for d in range(1, 9) if checkpoint_due(d, 8)] == [2, 4, 6]
    assert [d for d in range(1, 11) if checkpoint_due(d, 10)] == [3, 5, 8]
    assert [d for d in range(1, 4) if checkpoint_due(d, 3)] == [1, 2]
    assert not any(checkpoint_due(d, 1) for d in range(0, 3))
    assert sum(checkpoint_due(d, 10_000) for d in range(1, 10_001)) == 3


def test_the_sdks_state_messages_are_held_and_only_the_latest_goes_out(capsysbinary):
    import json

    from singer_sdk.singerlib.encoding.simple import StateMessage

    from tap_cronofy.output import StateFlushingWriter

    writer = StateFlushingWriter()
    writer.hold_states = True  # as during a run
    state = {"bookmarks": {"a": 1}}
    writer.write_message(StateMessage(value=state))
    writer.write_message(StateMessage(value=state))
    assert capsysbinary.readouterr().out == b"", "held, not written"
    writer.write_state_now({"bookmarks": {"checkpoint": True}})
    state["bookmarks"]["a"] = 2  # the live state moves on
    writer.write_message(StateMessage(value=state))
    writer.finish()
    writer.finish()  # nothing held any more: nothing more written
    lines = [json.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert [line["value"] for line in lines] == [
        {"bookmarks": {"checkpoint": True}, FORMAT_KEY: FORMAT},
        {"bookmarks": {"a": 2}, FORMAT_KEY: FORMAT},
    ]
    assert writer.states_written == 2


def test_outside_a_run_state_messages_go_out_as_the_sdk_writes_them(capsysbinary):
    import json

    from singer_sdk.singerlib.encoding.simple import StateMessage

    from tap_cronofy.output import StateFlushingWriter

    writer = StateFlushingWriter()
    writer.write_message(StateMessage(value={"n": 1}))
    assert json.loads(capsysbinary.readouterr().out) == {"type": "STATE", "value": {"n": 1}}
    assert writer.states_written == 1


def test_threads_waiting_together_count_their_wait_once():
    """Waiting is the run's wall time blocked, not a sum over threads: it can never exceed
    the run's length (8 workers waiting 10 s together waited 10 s, not 80)."""
    clock = FakeClock()
    both_asleep = threading.Barrier(2, timeout=5)
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        both_asleep.wait()
        with lock:
            clock.now = max(clock.now, 10.0)

    limiter = SlidingWindowLimiter([(2, 10.0)], clock=clock.time, sleep=sleep)
    for _ in range(2):
        with limiter.request():
            pass
    workers = [threading.Thread(target=lambda: limiter.request().__enter__()) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(5)
    assert limiter.waited_seconds == pytest.approx(10.0)


def test_a_long_pause_is_announced_before_it_is_slept():
    clock = FakeClock()
    events: list[tuple[str, float]] = []

    def sleep(seconds: float) -> None:
        events.append(("sleep", seconds))
        clock.sleep(seconds)

    limiter = SlidingWindowLimiter(
        [(1, 10.0)],
        clock=clock.time,
        sleep=sleep,
        on_pause=lambda seconds: events.append(("announced", seconds)),
        long_pause=5.0,
    )
    with limiter.request():
        pass
    clock.now = 6.0  # 4 s left: short, not announced
    with limiter.request():
        pass
    with limiter.request():  # 10 s: announced first
        pass
    assert events == [("sleep", 4.0), ("announced", 10.0), ("sleep", 10.0)]


def test_one_pause_waited_out_by_eight_threads_is_announced_once():
    """Eight workers meet the same full window: one line for the pause, not eight."""
    announced: list[float] = []
    now = [0.0]
    lock = threading.Lock()
    gate = threading.Barrier(8)

    def sleep(seconds: float) -> None:
        gate.wait(timeout=5)  # every worker is inside the same pause before time moves
        with lock:
            now[0] = max(now[0], 100.0)

    limiter = SlidingWindowLimiter(
        [(8, 60.0)], clock=lambda: now[0], sleep=sleep, on_pause=announced.append, long_pause=5
    )
    for _ in range(8):  # the window is full until 60 s
        with limiter.request():
            pass

    def worker() -> None:
        with limiter.request():
            pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert announced == [60.0], announced


def test_secrets_sharing_a_long_prefix_are_each_masked():
    """Tokens of one issuer often share a prefix (`sim-at-`, `CRfy-`): each is still found."""
    registry = SecretRegistry()
    tokens = [f"shared-prefix-{n:05d}-tail" for n in range(3000)]
    for token in tokens:
        registry.add(token)
    text = f"a={tokens[7]} b={tokens[2999]} c=shared-prefix-00007-tai"
    assert registry.redact(text) == f"a={MASK} b={MASK} c=shared-prefix-00007-tai"


def test_overlapping_secrets_are_masked_as_one_region():
    registry = SecretRegistry()
    registry.add("abcdEFGH")
    registry.add("EFGHijkl")
    assert registry.redact("<abcdEFGHijkl>") == f"<{MASK}>", "no part of either shows"


def test_the_client_announces_a_long_pause_with_its_limits(caplog):
    from tap_cronofy.client import LONG_WAIT_SECONDS, CronofyClient
    from tap_cronofy.settings import Settings

    logger = logging.getLogger("tap-cronofy-pause-test")
    client = CronofyClient(
        Settings.from_config({"access_token": "tok-1234", "requests_per_minute": 120}),
        user_agent="test",
        logger=logger,
    )
    assert client.limiter._long_pause == LONG_WAIT_SECONDS == 5.0
    with caplog.at_level(logging.INFO, logger=logger.name):
        client.limiter._on_pause(12.4)  # type: ignore[misc]
    assert caplog.messages == [
        "Pausing 12 s for the client-side rate limit (120 requests/minute, 50/second)."
    ]


def test_record_lines_are_byte_for_byte_the_sdks_msgspec_lines():
    import datetime as dt
    import decimal

    from singer_sdk.contrib.msgspec import MsgSpecWriter
    from singer_sdk.singerlib.encoding.simple import RecordMessage

    from tap_cronofy.output import StateFlushingWriter
    from tap_cronofy.streams.base import TypedRecordMessage

    moment = dt.datetime(2026, 1, 1, 3, 4, 5, 123456, tzinfo=dt.timezone.utc)
    later = dt.datetime(2026, 1, 1, 3, 4, 6, tzinfo=dt.timezone.utc)
    messages = [
        RecordMessage(
            stream="s", record={"a": 1, "d": decimal.Decimal("1.5")}, time_extracted=moment
        ),
        TypedRecordMessage(
            stream="free_busy", record={"k": "é", "n": None}, version=3, time_extracted=moment
        ),
        TypedRecordMessage(stream="free_busy", record={"k": 2}, time_extracted=later),
        RecordMessage(stream="s", record={"a": 2}, time_extracted=None),
    ]
    writer = StateFlushingWriter()
    for message in messages:
        writer.write_message(message)
    expected = b"".join(bytes(MsgSpecWriter().format_message(m)) for m in messages)
    assert bytes(writer._pending) == expected
    writer._pending.clear()


def test_the_summary_says_one_page_not_one_pages():
    from tap_cronofy.report import RunReport

    report = RunReport()
    tally = report.tally("free_busy")
    tally.accounts, tally.pages, tally.records, tally.deleted, tally.collisions = 1, 1, 1, 1, 1
    tally.reads["incremental"] += 1
    report.tally("calendars").reads["not due"] += 2
    lines = report.summary_lines(0.0, 1)
    assert lines == [
        "Summary calendars: 0 records (reads: 2 not due).",
        "Summary free_busy: 1 record from 1 account (1 page; reads: 1 incremental), "
        "1 deletion, 1 key collision.",
        "Summary run: 1 request to Cronofy, 0.0 s waiting on the client-side rate limit, "
        "0 failed accounts.",
    ]


def test_the_sdks_stream_wide_bookmark_line_and_broken_pipe_error_are_dropped():
    import sys

    from tap_cronofy.streams.base import _quiet_sdk_lines

    def record(msg: str, args: tuple) -> logging.LogRecord:
        return logging.LogRecord(
            "tap-cronofy.free_busy", logging.INFO, __file__, 1, msg, args, None
        )

    template = "Starting incremental sync of '%s' with bookmark value: %s"
    assert not _quiet_sdk_lines(record(template, ("free_busy", None)))
    assert _quiet_sdk_lines(record(template, ("free_busy", "2026-12-01T00:00:00Z")))
    unhandled = record("An unhandled error occurred while syncing '%s'", ("free_busy",))
    assert _quiet_sdk_lines(unhandled), "any other error is logged"
    try:
        raise BrokenPipeError
    except BrokenPipeError:
        assert sys.exc_info()[0] is BrokenPipeError
        assert not _quiet_sdk_lines(unhandled), (
            "the reader closing the pipe is said once, by the tap"
        )


def imported_modules(path) -> list[str]:
    """Every module a Python file imports (absolute names, as written)."""
    import ast

    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_no_core_module_imports_a_wing():
    """push/, shards/ and check/ are layers on the core, not in it: no core module imports
    any of them (nor does a wing import another)."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "tap_cronofy"
    wings = ("push", "shards", "check")
    offenders = []
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).parts
        home = parts[0] if parts[0] in wings else None
        for name in imported_modules(path):
            wing = name.split(".")[1] if name.startswith("tap_cronofy.") else None
            if wing in wings and wing != home:
                offenders.append(f"{'/'.join(parts)} imports {name}")
    assert not offenders, offenders


def test_benchmarks_harness_and_demo_import_no_test_module():
    """The tests' shared parts live in harness/; what the benchmarks and the demo use never
    comes from tests/ (a test module is free to change)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("benchmarks", "harness", "demo"):
        for path in (root / folder).rglob("*.py"):
            names = imported_modules(path)
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert not offenders, offenders


def test_a_secret_is_masked_only_where_it_is_whole_not_where_its_ending_is():
    registry = SecretRegistry()
    registry.add("abcd1234")
    assert registry.redact("zzzz1234 and 1234") == "zzzz1234 and 1234"


def test_touching_secrets_are_masked_each_on_its_own():
    registry = SecretRegistry()
    registry.add("abcd")
    registry.add("efgh")
    assert registry.redact("<abcdefgh>") == f"<{MASK}{MASK}>"


@pytest.mark.parametrize("tail", [" X", "  "])
def test_the_masked_traceback_is_the_formatters_text_with_the_secret_masked(tail):
    import sys

    from tap_cronofy.redact import SECRETS, RedactingFilter

    SECRETS.add("secret-token-55")
    try:
        raise ValueError(f"with secret-token-55{tail}")
    except ValueError:
        exc_info = sys.exc_info()
    expected = logging.Formatter().formatException(exc_info).replace("secret-token-55", MASK)
    assert expected.startswith("Traceback (most recent call last):")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, exc_info)
    RedactingFilter().filter(record)
    assert record.exc_text == expected


def test_an_exception_that_was_never_raised_is_masked_too():
    """logger.error(..., exc_info=error) with an error built, not raised: no traceback."""
    from tap_cronofy.redact import SECRETS, RedactingFilter

    SECRETS.add("secret-token-66")
    error = ValueError("bad secret-token-66")
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "failed", None, (ValueError, error, None)
    )
    RedactingFilter().filter(record)
    assert record.exc_text == f"ValueError: bad {MASK}"
    assert str(record.exc_info[1]) == f"bad {MASK}"


def test_a_masked_exception_of_a_new_class_keeps_its_names_and_its_context():
    """Classes defined here are new to the stand-in cache, and nested ones have a dotted
    qualified name; an implicit context (no `from`) is masked like a cause."""
    import sys

    from tap_cronofy.redact import SECRETS, RedactingFilter

    SECRETS.add("secret-token-44")

    class TokenRefusedError(Exception):
        pass

    class SyncFailedError(Exception):
        pass

    try:
        try:
            raise TokenRefusedError("refused for secret-token-44")
        except TokenRefusedError:
            raise SyncFailedError("sync failed")  # noqa: B904 - the implicit context is the point
    except SyncFailedError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, exc_info)
    RedactingFilter().filter(record)
    value = record.exc_info[1]
    assert (type(value).__name__, type(value).__qualname__, type(value).__module__) == (
        "SyncFailedError",
        SyncFailedError.__qualname__,
        __name__,
    )
    assert str(value) == "sync failed" and value.__cause__ is None
    assert record.exc_info[2] is exc_info[2]
    context = value.__context__
    assert context is not None and not value.__suppress_context__
    assert (type(context).__name__, type(context).__qualname__, type(context).__module__) == (
        "TokenRefusedError",
        TokenRefusedError.__qualname__,
        __name__,
    )
    assert str(context) == f"refused for {MASK}"
    assert context.__traceback__ is exc_info[1].__context__.__traceback__


@pytest.mark.parametrize("link", ["__cause__", "__context__"])
def test_a_long_exception_chain_is_cut_after_ten_links(link):
    from tap_cronofy.redact import SECRETS, RedactingFilter

    SECRETS.add("secret-token-33")
    chain = [ValueError(f"link {n} secret-token-33") for n in range(13)]
    for outer, inner in itertools.pairwise(chain):
        setattr(outer, link, inner)
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "boom", None, (ValueError, chain[0], None)
    )
    RedactingFilter().filter(record)
    messages = []
    value = record.exc_info[1]
    while value is not None:
        messages.append(str(value))
        value = getattr(value, link)
    assert messages == [f"link {n} {MASK}" for n in range(11)]  # the first and ten more


def test_the_installed_record_factory_passes_keyword_arguments_on(monkeypatch):
    from tap_cronofy import redact

    original = logging.getLogRecordFactory()
    monkeypatch.setattr(redact, "_installed", False)  # as in a fresh process
    logging.setLogRecordFactory(logging.LogRecord)
    try:
        redact.install_log_redaction()
        installed = logging.getLogRecordFactory()
        redact.SECRETS.add("factory-secret-2")
        record = installed(
            "n", logging.INFO, __file__, 1, "x", None, None, func="f", sinfo="at factory-secret-2"
        )
        assert record.funcName == "f" and record.stack_info == f"at {MASK}"
    finally:
        logging.setLogRecordFactory(original)


# 422 and 402 advice: the field Cronofy named, not a fixed list

import pytest  # noqa: E402
import requests  # noqa: E402

from tap_cronofy.client import field_advice, raise_for_status  # noqa: E402
from tap_cronofy.errors import CronofyAPIError, ParameterError  # noqa: E402


def answer(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.url = "https://api.cronofy.com/v1/free_busy"
    response.reason = {402: "Payment Required", 422: "Unprocessable Entity"}[status]
    return response


@pytest.mark.parametrize(
    ("body", "says", "never"),
    [
        (
            b'{"errors": {"tzid": [{"key": "errors.required"}]}}',
            "Check the setting `tzid`.",
            "start_date",
        ),
        (
            b'{"errors": {"to": [{"key": "errors.too_late"}]}}',
            "Check the setting `end_date`.",
            "tzid",
        ),
        (
            b'{"errors": {"event_id": [{"key": "errors.required"}]}}',
            "Cronofy named `event_id`, which no setting of the tap sets",
            "tzid",
        ),
        (b"<html>Unprocessable</html>", "Cronofy named no field", "calendar_ids"),
    ],
)
def test_a_422_names_what_cronofy_named(body, says, never):
    with pytest.raises(ParameterError) as caught:
        raise_for_status(answer(422, body))
    assert says in str(caught.value) and never not in str(caught.value)


def test_two_named_fields_are_two_settings():
    assert field_advice({"from", "calendar_ids"}) == (
        "Check the settings `calendar_ids`, `start_date`."
    )


def test_a_402_says_the_plan_lacks_the_feature():
    with pytest.raises(CronofyAPIError, match="plan of this application does not include"):
        raise_for_status(answer(402, b'{"error": "payment_required"}'))


def test_a_run_reading_many_accounts_whole_says_what_it_will_cost_first():
    assert first_sync_warning(new=FIRST_SYNC_WARN_AT - 1, configured=5000, per_minute=500) is None
    said = first_sync_warning(new=4000, configured=5000, per_minute=500)
    assert said is not None
    assert said.startswith("4,000 of 5,000 accounts have no state")
    assert "at least 12,000 requests (24 minutes at 500 requests/minute)" in said
    assert "'Moving state'" in said
    assert first_sync_warning(new=100, configured=100, per_minute=100) is not None


def test_progress_is_one_line_a_minute_with_what_is_left():
    now = [0.0]
    progress = Progress(every=60, clock=lambda: now[0])
    lines = []
    for done in range(1, 10_001):  # 10,000 accounts, 1/32 s each: about 5 minutes
        now[0] += 0.03125
        if line := progress.line(done, 10_000, requests=2 * done, waited=done / 1000):
            lines.append(line)
    assert len(lines) == 5, lines  # every 60 s from the first account done; none at the end
    assert lines[0] == (
        "Progress: 1,921 of 10,000 accounts done; 3,842 requests so far, 2 s waiting on the "
        "rate limit; about 4 min left for this stream."
    )
    assert lines[-1].startswith("Progress: 9,601 of 10,000") and "about a minute left" in lines[-1]
    now[0] += 1000  # the next stream starts its own clock and its own estimate
    assert progress.line(1, 50, requests=1, waited=0) is None
    now[0] += 61
    assert "2 of 50 accounts done" in (progress.line(2, 50, requests=3, waited=0) or "")
