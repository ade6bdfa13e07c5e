"""The outbox: sequence numbers survive reopening, the bound drops telemetry only."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from edge.config import read_gateway_config
from edge.emitter import drop_record
from edge.outbox import PRIO_DATA, PRIO_EVENT, Outbox, Pending, _ranges
from wire import MAX_DROP_RANGES, MAX_OUTBOX_MESSAGES, DropRecord, decode_sequenced
from wire.yamlconf import ConfigError


def _outbox(path: Path, max_messages: int = 1000) -> Outbox:
    return Outbox(
        path, max_messages=max_messages, drop_record=lambda s, r: drop_record("gw-t", s, r)
    )


def _items(n: int, prio: int = PRIO_DATA) -> list[Pending]:
    return [Pending(prio, f"t/{i}", lambda seq: str(seq).encode()) for i in range(n)]


def test_sequence_numbers_continue_after_reopen(tmp_path: Path) -> None:
    box = _outbox(tmp_path / "o.sqlite")
    assert box.append(_items(3)) == [1, 2, 3]
    box.ack([1, 2, 3])
    assert box.depth == 0
    box.close()
    box = _outbox(tmp_path / "o.sqlite")
    assert box.append(_items(2)) == [4, 5]
    assert [r.payload for r in box.fetch(PRIO_DATA, 0, 10)] == [b"4", b"5"]


def test_fetch_is_ordered_per_priority(tmp_path: Path) -> None:
    box = _outbox(tmp_path / "o.sqlite")
    box.append(_items(2) + _items(1, PRIO_EVENT) + _items(2))
    assert [r.seq for r in box.fetch(PRIO_EVENT, 0, 10)] == [3]
    assert [r.seq for r in box.fetch(PRIO_DATA, 0, 10)] == [1, 2, 4, 5]
    assert [r.seq for r in box.fetch(PRIO_DATA, 2, 10)] == [4, 5]


def test_full_outbox_drops_oldest_telemetry_never_events(tmp_path: Path) -> None:
    box = _outbox(tmp_path / "o.sqlite", max_messages=100)
    box.append(_items(10, PRIO_EVENT))
    for _ in range(20):
        box.append(_items(10))
    assert box.depth <= 100
    events = box.fetch(PRIO_EVENT, 0, 1000)
    assert [r.seq for r in events][:10] == list(range(1, 11)), "events are never dropped"
    records = [decode_sequenced(r.topic, r.payload) for r in events[10:]]
    assert records and all(isinstance(r, DropRecord) for r in records)
    dropped = {s for r in records for a, b in r.ranges for s in range(a, b + 1)}  # type: ignore[union-attr]
    kept = {r.seq for r in box.fetch(PRIO_DATA, 0, 1000)}
    all_seqs = set(range(1, box.last_seq + 1))
    record_seqs = {r.seq for r in records}
    # every number is accounted for: kept, dropped-and-recorded, an event, or a record itself
    assert all_seqs == kept | dropped | set(range(1, 11)) | record_seqs
    assert not kept & dropped
    assert box.dropped_total == len(dropped)


def test_ranges_collapse() -> None:
    assert _ranges([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]


def test_drop_record_is_valid_wire(tmp_path: Path) -> None:
    topic, payload = drop_record("gw-t", 5, [(1, 4)])
    rec = decode_sequenced(topic, payload)
    assert isinstance(rec, DropRecord)
    assert rec.dropped_count() == 4
    assert msgspec.json.decode(payload)["t"] == "dropped"


def test_a_fragmented_drop_is_split_into_records_the_wire_accepts(tmp_path: Path) -> None:
    """Telemetry interleaved with events drops as one range per message: several records."""
    box = _outbox(tmp_path / "o.sqlite", max_messages=5000)
    alternating = [Pending(i % 2, f"t/{i}", lambda seq: str(seq).encode()) for i in range(4998)]
    box.append(alternating)  # telemetry at even seqs, events at odd: fits exactly
    box.append(_items(2500))  # drops 2,499 telemetry rows = 2,499 one-number ranges
    rows = box.fetch(PRIO_EVENT, 4998, 100)
    records = [decode_sequenced(r.topic, r.payload) for r in rows]  # each passes the wire check
    assert all(isinstance(r, DropRecord) for r in records)
    sizes = [len(r.ranges) for r in records]  # type: ignore[union-attr]
    assert sizes == [MAX_DROP_RANGES, MAX_DROP_RANGES, 2499 - 2 * MAX_DROP_RANGES]
    dropped = [a for r in records for a, b in r.ranges]  # type: ignore[union-attr]
    assert dropped == list(range(2, 2 * 2499 + 1, 2))
    assert [r.seq for r in records] == [box.last_seq - 2, box.last_seq - 1, box.last_seq]
    assert box.dropped_total == 2499


def test_outbox_bound_is_capped_by_the_wire_contract(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(f"gateway_id: gw-t\noutbox:\n  max_messages: {MAX_OUTBOX_MESSAGES + 1}\n")
    with pytest.raises(ConfigError, match=r"site\.yaml:3.*outbox\.max_messages"):
        read_gateway_config(site)
    site.write_text(f"gateway_id: gw-t\noutbox:\n  max_messages: {MAX_OUTBOX_MESSAGES}\n")
    assert read_gateway_config(site)[0].outbox.max_messages == MAX_OUTBOX_MESSAGES
