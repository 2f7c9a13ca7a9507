"""Singer output through msgspec, buffered, with a bounded number of STATE messages per run."""

from __future__ import annotations

import atexit
import os
import sys
import typing as t

import msgspec.json
from singer_sdk.contrib.msgspec import MsgSpecWriter, enc_hook
from singer_sdk.singerlib.encoding.simple import RecordMessage, StateMessage

from tap_cronofy.statecodec import compact

# As the SDK's msgspec writer encodes (its hook for other types, decimals as numbers),
# straight into the buffer: a RECORD line costs one encode and no intermediate copies.
_ENCODER = msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")

# STATE messages during a stream: after each of this many equal parts of its accounts (plus
# the final one). A run writes at most this many copies of its state however long it is,
# and a run killed halfway loses at most one part's progress.
CHECKPOINTS = 4


def checkpoint_due(done: int, total: int, parts: int = CHECKPOINTS) -> bool:
    """Whether finishing the ``done``-th of ``total`` accounts completes one of ``parts``
    equal parts, other than the last (the stream's own final STATE covers that one)."""
    return 0 < done < total and done * parts // total > (done - 1) * parts // total


class StateFlushingWriter(MsgSpecWriter):
    """msgspec lines collected in a buffer of our own, written out every 256 KiB and at each
    STATE message, rather than one system call per record.

    During a run (``hold_states``), the STATE messages the SDK writes (after every stream)
    are held back, and only the latest goes out: at a checkpoint the tap asks for
    (``write_state_now``) or when the run ends (``finish``). A run thus writes a few copies
    of its state, not one per stream or per interval, and each one still covers only
    records already written: the state object only ever advances past emitted records.

    Our own buffer because stdout is often unbuffered (PYTHONUNBUFFERED is common in
    containers and schedulers). A STATE line never reaches the target before the records
    it covers, since both leave in order from the same buffer.
    """

    FLUSH_BYTES = 1 << 18

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = bytearray()
        self._held: StateMessage | None = None
        self.hold_states = False
        self.broken = False  # the reader closed stdout: nothing more can be delivered
        self.states_written = 0
        self._prefixes: dict[str, bytes] = {}
        self._extracted: object = None
        self._extracted_bytes = b""
        atexit.register(self.finish)

    def write_message(self, message: t.Any) -> None:
        if isinstance(message, RecordMessage):  # the hot path: one per record
            self._write_record(message)
            return
        if isinstance(message, StateMessage) and self.hold_states:
            self._held = message  # the live state: serialised when it goes out
            self.flush()  # the records so far go out at once, as without holding
            return
        if isinstance(message, StateMessage):
            message = StateMessage(value=compact(message.value))
        self._pending += self.format_message(message)
        if isinstance(message, StateMessage):
            self.states_written += 1
            self.flush()
        elif len(self._pending) >= self.FLUSH_BYTES:
            self.flush()

    def _write_record(self, message: RecordMessage) -> None:
        self.write_record(message.stream, message.record, message.time_extracted, message.version)

    def write_record(
        self, stream: str, record: dict, extracted: t.Any, version: int | None = None
    ) -> None:
        """The bytes ``MsgSpecWriter`` writes for a RECORD (its keys in the same order),
        without building the message's dict: the record itself is the one thing encoded,
        the stream's prefix and the page's time_extracted are encoded once."""
        pending = self._pending
        prefix = self._prefixes.get(stream)
        if prefix is None:
            prefix = b'{"type":"RECORD","stream":' + _ENCODER.encode(stream) + b',"record":'
            self._prefixes[stream] = prefix
        pending += prefix
        _ENCODER.encode_into(record, pending, -1)
        if version is not None:
            pending += b',"version":' + _ENCODER.encode(version)
        if extracted is not None:
            if extracted is not self._extracted:
                self._extracted = extracted
                self._extracted_bytes = b',"time_extracted":' + _ENCODER.encode(extracted)
            pending += self._extracted_bytes
        pending += b"}\n"
        if len(pending) >= self.FLUSH_BYTES:
            self.flush()

    def write_state_now(self, state: t.Mapping[str, t.Any]) -> None:
        """A STATE message now, with the records before it."""
        self._held = None
        self._pending += self.format_message(StateMessage(value=compact(state)))
        self.states_written += 1
        self.flush()

    def finish(self) -> None:
        """The held STATE message, if any, and everything buffered."""
        if self._held is not None:
            held, self._held = self._held, None
            self.write_state_now(held.value)
        else:
            self.flush()

    def flush(self) -> None:
        """Everything buffered out to stdout. When the reader has closed it (``| head``),
        raises BrokenPipeError once; later output is dropped, with no second error."""
        if self.broken:
            self._pending.clear()
            return
        try:
            if self._pending:
                sys.stdout.buffer.write(self._pending)
            sys.stdout.flush()
        except BrokenPipeError:
            self.broken = True
            # As Python's documentation advises: point stdout at devnull, so that the
            # interpreter's own flush at exit does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise
        finally:
            self._pending.clear()
