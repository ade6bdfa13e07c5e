"""Duplicate detection by (gateway, seq)."""

from __future__ import annotations

from wire.dedup import SeqTracker


def test_first_time_and_redelivery() -> None:
    t = SeqTracker()
    assert [t.first_time("gw", s) for s in (1, 2, 2, 4, 3, 4, 1)] == [
        True,
        True,
        False,
        True,
        True,
        False,
        False,
    ]
    assert t.first_time("other", 1) is True


def test_gaps_and_drop_ranges() -> None:
    t = SeqTracker()
    for s in (1, 2, 5, 9):
        t.first_time("gw", s)
    assert t.gaps("gw") == [(3, 4), (6, 8)]
    t.seen_ranges("gw", [(3, 4)])
    assert t.gaps("gw") == [(6, 8)]


def test_snapshot_round_trip() -> None:
    t = SeqTracker()
    for s in (1, 2, 3, 7):
        t.first_time("gw", s)
    r = SeqTracker.restore(t.snapshot())
    assert r.first_time("gw", 3) is False
    assert r.first_time("gw", 7) is False
    assert r.first_time("gw", 4) is True
    assert r.gaps("gw") == [(5, 6)]
