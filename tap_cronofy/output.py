"""Singer output through msgspec, buffered by the tap and written out at each STATE message."""

from __future__ import annotations

import atexit
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib.encoding.simple import StateMessage


class StateFlushingWriter(MsgSpecWriter):
    """msgspec lines collected in a buffer of our own and written out at each STATE message
    (and every 256 KiB), rather than one system call per record.

    Our own buffer because stdout is often unbuffered (PYTHONUNBUFFERED is common in
    containers and schedulers). A STATE line never reaches the target before the records
    it covers, since both leave in order from the same buffer.
    """

    FLUSH_BYTES = 1 << 18

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = bytearray()
        atexit.register(self.flush)

    def write_message(self, message: t.Any) -> None:
        self._pending += self.format_message(message)
        if isinstance(message, StateMessage) or len(self._pending) >= self.FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            sys.stdout.buffer.write(self._pending)
            self._pending.clear()
        sys.stdout.flush()
