"""Keep secrets out of every log line, error message and traceback."""

from __future__ import annotations

import logging
import threading

MASK = "***"
_MIN_SECRET_LENGTH = 4


class SecretRegistry:
    """The set of secret strings of this run; tokens refreshed mid-run are added too."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._longest_first: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH:
            with self._lock:
                if value not in self._secrets:
                    self._secrets.add(value)
                    # Longest first, so a secret that contains another is masked whole.
                    self._longest_first = tuple(sorted(self._secrets, key=len, reverse=True))

    def redact(self, text: str) -> str:
        if not text:
            return text
        for secret in self._longest_first:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


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
