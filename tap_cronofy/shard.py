"""Which shard an account belongs to: a stable hash of its id, the same in every process."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

PATTERN = r"^[0-9]+/[0-9]+$"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"3/16"``: shard 3 of 16, numbered from 0."""
        if not re.match(PATTERN, text.strip()):
            msg = f"`shard` must look like 3/16 (shard 3 of 16, numbered from 0), got {text!r}."
            raise ValueError(msg)
        index, count = (int(part) for part in text.strip().split("/"))
        if count < 1 or not 0 <= index < count:
            msg = f"`shard` {text!r}: the shard must be 0 to {max(count, 1) - 1} of {count}."
            raise ValueError(msg)
        return cls(index, count)

    def holds(self, account_id: str) -> bool:
        return shard_of(account_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(account_id: str, count: int) -> int:
    """CRC32 of the account id, modulo ``count``: stable across processes, hosts and Python
    versions (unlike ``hash()``, which is salted per process)."""
    return zlib.crc32(account_id.encode("utf-8")) % count
