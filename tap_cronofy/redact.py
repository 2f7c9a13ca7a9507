"""Keep secrets out of every log line, error message and traceback."""

from __future__ import annotations

import logging
import threading

MASK = "***"
_MIN_SECRET_LENGTH = 4


class SecretRegistry:
    """The set of secret strings of this run; tokens refreshed mid-run are added too.

    Secrets are indexed by their first ``_MIN_SECRET_LENGTH`` characters: masking a text
    looks up each of its positions once, however many secrets there are (a fleet of 10,000
    accounts has 20,000 tokens)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        # prefix -> the secrets starting with it, longest first (replaced whole, never
        # changed in place: readers in other threads see one version or the other)
        self._by_prefix: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH:
            with self._lock:
                if value not in self._secrets:
                    self._secrets.add(value)
                    prefix = value[:_MIN_SECRET_LENGTH]
                    # Longest first, so a secret that contains another is masked whole.
                    same = (*self._by_prefix.get(prefix, ()), value)
                    self._by_prefix[prefix] = tuple(sorted(same, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """``text`` with every secret in it masked, left to right, longest match first."""
        index = self._by_prefix
        width = _MIN_SECRET_LENGTH
        if not text or not index:
            return text
        if not index.keys() & {text[i : i + width] for i in range(len(text) - width + 1)}:
            return text  # no position starts a secret: the common case
        pieces: list[str] = []
        start = i = 0
        while i <= len(text) - width:
            candidates = index.get(text[i : i + width], ())
            found = next((c for c in candidates if text.startswith(c, i)), None)
            if found is None:
                i += 1
                continue
            pieces += (text[start:i], MASK)
            i = start = i + len(found)
        if not pieces:
            return text
        pieces.append(text[start:])
        return "".join(pieces)


SECRETS = SecretRegistry()


class RedactingFilter(logging.Filter):
    """Masks known secrets in a record's message and formatted traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logged as it is
            return True
        record.msg = SECRETS.redact(message)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = SECRETS.redact(text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = SECRETS.redact(record.stack_info)
        return True


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
