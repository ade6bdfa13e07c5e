"""Duplicate detection by (gateway, seq)."""

from __future__ import annotations

from wire.dedup import MAX_PENDING, SeqTracker


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


def test_too_many_open_gaps_give_up_the_lowest_as_lost() -> None:
    t = SeqTracker()
    for i in range(MAX_PENDING + 1):  # one range more than held forces the lowest gap closed
        t.first_time("gw", 3 + 2 * i)
    assert t.lost("gw") == 2  # 1 and 2 were never seen
    assert t.gaps("gw")[:2] == [(4, 4), (6, 6)]
    assert len(t.gaps("gw")) == MAX_PENDING
    assert t.first_time("gw", 2) is False
