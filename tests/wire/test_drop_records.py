"""Drop records: ranges bounded by what an outbox can hold, refused otherwise, O(ranges) to track.

A 75-byte record like ``[[2, 1e15]]`` must not cost a consumer years of CPU: decoding refuses
ranges no outbox can have dropped, and the tracker stores ranges, not numbers.
"""

from __future__ import annotations

import json
import time

import pytest

from wire import (
    MAX_DROP_RANGES,
    MAX_OUTBOX_MESSAGES,
    DropRecord,
    WireError,
    decode_sequenced,
    encode,
)
from wire.dedup import SeqTracker
from wire.messages import MAX_PAYLOAD_BYTES
from wire.topics import dropped_topic

TOPIC = dropped_topic("gw-1")


def _payload(seq: int, ranges: object) -> bytes:
    return json.dumps(
        {"t": "dropped", "gw": "gw-1", "seq": seq, "ts": 1.0, "ranges": ranges}
    ).encode()


@pytest.mark.parametrize(
    ("seq", "ranges", "says"),
    [
        (10**16, [[2, 10**15]], "more than an outbox holds"),  # the 75-byte attack
        (10**16, [[1, MAX_OUTBOX_MESSAGES], [MAX_OUTBOX_MESSAGES + 2] * 2], "more than"),
        (100, [[5, 3]], "range 0 [5, 3]"),  # first > last
        (100, [[0, 3]], "range 0 [0, 3]"),  # seq numbers start at 1
        (100, [[1, 3], [3, 4]], "range 1 [3, 4]"),  # overlapping
        (100, [[7, 9], [1, 3]], "range 1 [1, 3]"),  # descending
        (100, [[90, 100]], "below the record's own seq"),  # names itself
        (100, [[90, 200]], "below the record's own seq"),  # names the future
        (10**9, [[2 * i + 1, 2 * i + 1] for i in range(MAX_DROP_RANGES + 1)], "1001 ranges"),
    ],
)
def test_impossible_drop_records_are_refused(seq: int, ranges: object, says: str) -> None:
    started = time.process_time()
    with pytest.raises(WireError, match="drop record") as info:
        decode_sequenced(TOPIC, _payload(seq, ranges))
    assert info.value.reason == "drop_ranges"
    assert says in str(info.value)
    assert time.process_time() - started < 1.0


def test_malformed_ranges_are_refused_by_the_schema() -> None:
    with pytest.raises(WireError) as info:
        decode_sequenced(TOPIC, _payload(100, [[1, 2, 3]]))
    assert info.value.reason == "schema"


def test_the_largest_legitimate_record_is_accepted_and_fits_a_payload() -> None:
    big = 10**18  # 19-digit sequence numbers: the widest a range can encode
    ranges = [(big + 2 * i, big + 2 * i) for i in range(MAX_DROP_RANGES)]
    record = DropRecord(gw="gw-1", seq=big + 2 * MAX_DROP_RANGES, ts=1.0, ranges=ranges)
    payload = encode(record)
    assert len(payload) < MAX_PAYLOAD_BYTES
    assert decode_sequenced(TOPIC, payload) == record
    whole = DropRecord(
        gw="gw-1", seq=MAX_OUTBOX_MESSAGES + 1, ts=1.0, ranges=[(1, MAX_OUTBOX_MESSAGES)]
    )
    decoded = decode_sequenced(TOPIC, encode(whole))
    assert isinstance(decoded, DropRecord)
    assert decoded.dropped_count() == MAX_OUTBOX_MESSAGES


def test_tracker_marks_a_huge_range_in_constant_time() -> None:
    t = SeqTracker()
    t.first_time("gw", 1)
    started = time.process_time()
    t.seen_ranges("gw", [(2, 20_000_000)])  # a legitimate drop of 20 million: one range
    t.seen_ranges("gw", [(2, 10**15)])  # even unchecked, a range costs O(1), not 1e15 steps
    assert time.process_time() - started < 0.5
    assert t.first_time("gw", 10**15) is False
    assert t.first_time("gw", 10**15 + 1) is True
    assert t.gaps("gw") == []


def test_tracker_ranges_merge_and_leave_the_right_gaps() -> None:
    t = SeqTracker()
    t.seen_ranges("gw", [(10, 20), (30, 40)])
    assert t.gaps("gw") == [(1, 9), (21, 29)]
    t.seen_ranges("gw", [(15, 31)])  # bridges the two
    assert t.gaps("gw") == [(1, 9)]
    assert [t.first_time("gw", s) for s in (9, 10, 25, 40, 41)] == [True, False, False, False, True]
    t.seen_ranges("gw", [(1, 8)])
    assert t.gaps("gw") == []
    assert t.snapshot()["gw"] == {"w": 41, "r": [], "l": 0}


def test_snapshot_holds_ranges_not_numbers() -> None:
    t = SeqTracker()
    t.first_time("gw", 1)
    t.seen_ranges("gw", [(3, 1_000_000)])
    state = json.loads(json.dumps(t.snapshot()))
    assert state == {"gw": {"w": 1, "r": [[3, 1_000_000]], "l": 0}}
    back = SeqTracker.restore(state)
    assert back.gaps("gw") == [(2, 2)]
    assert back.first_time("gw", 500_000) is False


def test_restore_reads_the_per_number_checkpoint_format() -> None:
    """Checkpoints written before ranges listed every number above the watermark."""
    old = {"gw": {"w": 4, "a": [6, 7, 9], "l": 2}, "gw2": {"w": 3, "a": []}}
    t = SeqTracker.restore(old)
    assert t.gaps("gw") == [(5, 5), (8, 8)]
    assert t.lost("gw") == 2
    assert [t.first_time("gw", s) for s in (4, 6, 9, 5)] == [False, False, False, True]
    assert t.snapshot()["gw"] == {"w": 7, "r": [[9, 9]], "l": 2}
    assert t.first_time("gw2", 3) is False
    assert t.first_time("gw2", 4) is True
