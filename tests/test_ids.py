"""Version 7 ids: the layout RFC 9562 gives them, ordered by time, and never repeated."""

from __future__ import annotations

import time
import uuid

from trustguard.ids import uuid7, uuid7_many


def test_a_version_7_id_carries_its_version_variant_and_millisecond():
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000

    assert type(value) is uuid.UUID
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_ids_sort_by_the_millisecond_they_were_made_in():
    first = uuid7_many(50)
    time.sleep(0.002)
    second = uuid7_many(50)

    assert max(first) < min(second)


def test_the_random_part_is_random():
    values = uuid7_many(10_000)

    assert len(set(values)) == 10_000
    assert len({v.int & ((1 << 62) - 1) for v in values}) == 10_000  # rand_b differs, not only rand_a
    assert len({(v.int >> 64) & 0xFFF for v in values}) > 3_000  # rand_a takes most of its 4,096 values


def test_a_version_7_id_tells_when_it_was_made_and_other_ids_do_not():
    from datetime import UTC, datetime

    from trustguard.ids import uuid7_time

    before = datetime.now(UTC)
    made = uuid7_time(str(uuid7()))

    assert made is not None and abs((made - before).total_seconds()) < 1
    assert uuid7_time(uuid.uuid4()) is None
    assert uuid7_time("not-an-id") is None
