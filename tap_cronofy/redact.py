"""Keep secrets out of every log line, error message and traceback."""

from __future__ import annotations

import logging
import threading
import traceback

MASK = "***"
_MIN_SECRET_LENGTH = 4


class SecretRegistry:
    """The set of secret strings of this run; tokens refreshed mid-run are added too.

    Secrets are indexed by their last ``_MIN_SECRET_LENGTH`` characters (tokens often share
    a prefix, rarely an ending): masking a text costs one lookup per position of the text,
    however many secrets there are (a fleet of 10,000 accounts has 20,000 tokens), and
    adding one is O(1)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        # ending -> the secrets ending with it (replaced whole, never changed in place:
        # readers in other threads see one version or the other)
        self._by_ending: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH:
            with self._lock:
                if value not in self._secrets:
                    self._secrets.add(value)
                    ending = value[-_MIN_SECRET_LENGTH:]
                    self._by_ending[ending] = (*self._by_ending.get(ending, ()), value)

    def redact(self, text: str) -> str:
        """``text`` with every secret in it masked; overlapping secrets are masked as one."""
        index = self._by_ending
        width = _MIN_SECRET_LENGTH
        if not text or not index:
            return text
        windows = {text[i : i + width] for i in range(len(text) - width + 1)}
        if not index.keys() & windows:
            return text  # no position ends a secret: the common case
        found: list[tuple[int, int]] = []
        for i in range(len(text) - width + 1):
            end = i + width
            for secret in index.get(text[i:end], ()):
                start = end - len(secret)
                if start >= 0 and text.startswith(secret, start):
                    found.append((start, end))
        if not found:
            return text
        pieces: list[str] = []
        cursor = 0  # text before this is copied or masked
        region: tuple[int, int] | None = None
        for start, end in sorted(found):
            if region is not None and start < region[1]:  # overlaps: one masked region
                region = (region[0], max(region[1], end))
                continue
            if region is not None:
                pieces += (text[cursor : region[0]], MASK)
                cursor = region[1]
            region = (start, end)
        assert region is not None
        pieces += (text[cursor : region[0]], MASK, text[region[1] :])
        return "".join(pieces)


SECRETS = SecretRegistry()


class RedactingFilter(logging.Filter):
    """Masks known secrets in a record's message, exception and stack, and leaves the record
    as it is when it holds none: ``args`` and ``exc_info`` stay for formatters that read
    them (the SDK's JSON logging takes a metric from ``args`` and structures exceptions)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logged as it is
            return True
        masked = SECRETS.redact(message)
        if masked != message:  # the message goes out as masked text
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            value = record.exc_info[1]
            text = "".join(traceback.format_exception(type(value), value, value.__traceback__))
            if (masked_text := SECRETS.redact(text)) != text:
                # Text formatters print exc_text as it is; structured ones read exc_info.
                stand_in = _stand_in(value)
                record.exc_info = (type(stand_in), stand_in, stand_in.__traceback__)
                record.exc_text = masked_text.rstrip("\n")
        if record.stack_info:
            record.stack_info = SECRETS.redact(record.stack_info)
        return True


_STAND_IN_TYPES: dict[type, type] = {}


def _stand_in(value: BaseException, depth: int = 0) -> BaseException:
    """An exception like ``value`` (same type name and module, same traceback, its cause or
    context likewise) whose message is ``value``'s, masked."""
    original = type(value)
    kind = _STAND_IN_TYPES.get(original)
    if kind is None:
        namespace = {"__module__": original.__module__, "__qualname__": original.__qualname__}
        kind = _STAND_IN_TYPES.setdefault(
            original, type(original.__name__, (Exception,), namespace)
        )
    stand_in = kind(SECRETS.redact(str(value)))
    stand_in.__traceback__ = value.__traceback__
    if depth < 10:  # chains are short; a cycle is cut
        if value.__cause__ is not None:
            stand_in.__cause__ = _stand_in(value.__cause__, depth + 1)
        elif value.__context__ is not None and not value.__suppress_context__:
            stand_in.__context__ = _stand_in(value.__context__, depth + 1)
    stand_in.__suppress_context__ = value.__suppress_context__
    return stand_in


_FILTER = RedactingFilter()
_installed = False


def install_log_redaction() -> None:
    """Mask secrets in every log record of the process, whichever logger or handler."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _FILTER.filter(record)
        return record

    logging.setLogRecordFactory(redacted_record)
    _installed = True
