"""Cronofy's push-notification signature: Base64(HMAC-SHA256(raw body, client secret))."""

from __future__ import annotations

import base64
import hashlib
import hmac
import typing as t

HEADER = "Cronofy-HMAC-SHA256"


def sign(body: bytes, secret: str) -> str:
    """The header value Cronofy sends for ``body`` when ``secret`` is the client secret."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, header: str | None, secrets: t.Iterable[str]) -> bool:
    """Whether ``header`` (one value, or several comma-separated while Cronofy has more
    than one active secret) signs ``body`` with any of ``secrets``. Every pair is compared
    in constant time, so a guess learns nothing from how long the answer took."""
    if not header:
        return False
    offered = [value.strip().encode("ascii", "replace") for value in header.split(",")]
    matched = False
    for secret in secrets:
        if not secret:
            continue
        expected = sign(body, secret).encode("ascii")
        for value in offered:
            matched |= hmac.compare_digest(expected, value)
    return matched
