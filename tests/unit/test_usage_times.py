"""The ledger's one cutter of time spans into hours and days (reports, charts, quotas)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from reconciler.usage.times import DAY, HOUR, floor, split, utc, utc_or_now


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def test_a_span_is_cut_where_the_hours_begin() -> None:
    assert list(split(at(1, 9, 30), at(1, 11, 15), HOUR)) == [
        (at(1, 9), 1800.0),
        (at(1, 10), 3600.0),
        (at(1, 11), 900.0),
    ]


def test_days_are_utc_days_whatever_the_zone_given() -> None:
    paris = timezone(timedelta(hours=1))
    start = datetime(2026, 3, 2, 0, 30, tzinfo=paris)  # 1 March, 23:30 UTC
    assert list(split(start, at(2, 1), DAY)) == [(at(1, 0), 1800.0), (at(2, 0), 3600.0)]
    assert floor(start, DAY) == at(1, 0)


def test_an_empty_or_reversed_span_has_no_buckets() -> None:
    assert list(split(at(1, 9), at(1, 9), HOUR)) == []
    assert list(split(at(1, 10), at(1, 9), HOUR)) == []


def test_naive_times_are_utc() -> None:
    assert utc(datetime(2026, 3, 1, 9)) == at(1, 9)
    assert utc_or_now(datetime(2026, 3, 1, 9)) == at(1, 9)
    assert utc_or_now(None).tzinfo is UTC
