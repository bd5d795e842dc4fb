"""Time-ordered UUIDs (version 7, RFC 9562) for the ids of rows written in volume.

A random (version 4) primary key puts every insert, and every update that cannot stay on its heap page,
on a random leaf of the key's index: at volume each one dirties another index page, and the first write
to a page after a checkpoint logs the whole page. A version 7 id starts with the Unix time in
milliseconds, so rows written together land on the same few index pages. The other 74 bits are random
(from `secrets`), so ids stay unguessable; what they add is the creation time to the millisecond, which
the rows carry anyway. Python 3.14's `uuid.uuid7` is the same layout; this is for 3.11 and for batches.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime

_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def uuid7_many(count: int) -> list[uuid.UUID]:
    """`count` version 7 ids of this millisecond, from one read of the OS's randomness."""
    millis = time.time_ns() // 1_000_000
    randomness = secrets.token_bytes(10 * count)
    prefix = (millis << 80) | (0x7 << 76)  # unix_ts_ms (48 bits), then the version
    out = []
    for i in range(count):
        bits = int.from_bytes(randomness[10 * i:10 * i + 10], "big")  # 80 random bits, 74 used
        out.append(uuid.UUID(int=prefix | ((bits >> 62) & _RAND_A) << 64 | (0b10 << 62) | (bits & _RAND_B)))
    return out


def uuid7() -> uuid.UUID:
    """A version 7 id: sorts by creation time (to the millisecond), random after that."""
    return uuid7_many(1)[0]


def uuid7_time(value: object) -> datetime | None:
    """When a version 7 id was made (UTC, to the millisecond); None for any other id."""
    try:
        parsed = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    return datetime.fromtimestamp((parsed.int >> 80) / 1000, tz=UTC)
