"""The SDK surface the tap leans on: fails loudly when an SDK upgrade changes it."""

from __future__ import annotations

import inspect

from singer_sdk import Stream, Tap

from tap_cronofy.streams import FreeBusyStream, SchedulingRequestsStream
from tap_cronofy.streams.base import PRIVATE_SDK_OVERRIDES, CronofyStream
from tap_cronofy.tap import TapCronofy


def private_overrides(cls: type, base: type) -> set[str]:
    """Single-underscore names ``cls`` (or its own ancestors) defines that ``base`` has too."""
    names = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("tap_cronofy"):
            for name in vars(klass):
                private = name.startswith("_") and not name.startswith("__")
                if private and name != "_abc_impl" and hasattr(base, name):
                    names.add(name)
    return names


def test_the_only_private_sdk_overrides_are_the_listed_ones():
    found = set()
    for stream in (CronofyStream, FreeBusyStream, SchedulingRequestsStream):
        found |= private_overrides(stream, Stream)
    found |= private_overrides(TapCronofy, Tap)
    assert found == set(PRIVATE_SDK_OVERRIDES), (
        "a private SDK method is overridden without being listed (and justified) in "
        "tap_cronofy/streams/base.py PRIVATE_SDK_OVERRIDES"
    )


def test_increment_stream_state_is_still_what_we_override():
    """Same signature, and still called once per record by the SDK's sync loop: if this
    fails after an SDK upgrade, re-check that bookmarks are written only per partition."""
    signature = inspect.signature(Stream._increment_stream_state)
    assert list(signature.parameters) == ["self", "latest_record", "context"]
    assert signature.parameters["context"].kind is inspect.Parameter.KEYWORD_ONLY
    loop = inspect.getsource(Stream._sync_records)
    assert "self._increment_stream_state(record, context=current_context)" in loop


def test_public_hooks_the_tap_relies_on_exist():
    assert callable(getattr(Tap, "invoke", None))
    assert isinstance(inspect.getattr_static(Tap, "state_writer"), property)
    assert "state" in inspect.signature(Tap.__init__).parameters
    assert hasattr(Stream, "get_replication_key_signpost")


def test_generate_record_messages_is_still_what_we_shortcut():
    """The SDK's method still takes one record, and its work is still the selection walk,
    conformance and the stream maps, which the shortcut reproduces when they are no-ops."""
    signature = inspect.signature(Stream._generate_record_messages)
    assert list(signature.parameters) == ["self", "record"]
    source = inspect.getsource(Stream._generate_record_messages)
    for step in (
        "pop_deselected_record_properties",
        "conform_record_data_types",
        "stream_map.transform",
        "version=self._stream_version",
    ):
        assert step in source, step


def test_write_record_message_is_still_what_we_shortcut():
    """The SDK's method still writes each message of _generate_record_messages to the tap
    and marks the state unflushed, and the tap's write_message still hands the message to
    the writer: the shortcut does exactly that, with no message object."""
    assert list(inspect.signature(Stream._write_record_message).parameters) == ["self", "record"]
    source = inspect.getsource(Stream._write_record_message)
    assert "in self._generate_record_messages(record)" in source
    assert "self._tap.write_message(record_message)" in source
    assert "self.state_manager.is_flushed = False" in source
    assert "self.message_writer.write_message(message)" in inspect.getsource(Tap.write_message)


def test_process_record_is_still_what_we_narrow():
    """Partition keys into the record, then child contexts: if the SDK's method starts doing
    more, the narrowed version must learn it too."""
    signature = inspect.signature(Stream._process_record)
    assert list(signature.parameters) == [
        "self",
        "record",
        "child_context",
        "partition_context",
    ]
    source = inspect.getsource(Stream._process_record)
    assert "generate_child_contexts" in source and "record[key] = val" in source
    assert source.count("self.") <= 3, "the SDK's method does more than it used to"
