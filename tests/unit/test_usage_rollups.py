"""Samples and roll-ups: CPU-seconds from the cumulative counter (a restart resets it), the
hourly and daily roll-ups kept as samples arrive, a report from roll-ups alone, trimming."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from reconciler.store import Store
from reconciler.usage.ledger import UsageLedger
from reconciler.usage.rollups import Sample, cpu_delta, sample_interval
from reconciler.usage.tables import DailyRow, HourlyRow, SampleRow, SessionRow, StorageRow

T0 = datetime(2026, 11, 1, 22, 0, tzinfo=UTC)


def test_cpu_delta_survives_a_counter_reset() -> None:
    assert cpu_delta(None, 12.5) == 12.5  # the first sample: all since the container started
    assert cpu_delta(12.5, 20.0) == 7.5
    assert cpu_delta(20.0, 3.0) == 3.0  # the container restarted: the counter began again
    assert cpu_delta(None, -1.0) == 0.0


def test_sample_interval_is_bounded() -> None:
    assert sample_interval(T0, T0 + timedelta(seconds=61), 60, None) == 61
    assert sample_interval(T0, T0 + timedelta(hours=3), 60, None) == 120  # a gap is not guessed at
    assert sample_interval(None, T0 + timedelta(seconds=20), 60, T0) == 20
    assert sample_interval(None, T0 + timedelta(seconds=600), 60, T0) == 60


def test_rollups_follow_the_samples_and_a_report_reads_them(db_url: str) -> None:
    u = UsageLedger(Store(db_url))
    u.open_session("alice", "", T0, ["physics"])
    # two hours across midnight, one sample a minute, a steady 0.5 core and 1 GiB
    total, previous = 0.0, None
    for i in range(1, 121):
        t = T0 + timedelta(minutes=i)
        total += 30.0
        u.record_samples([Sample(t, "alice", "", "c1", total, cpu_delta(previous, total), 1024**3, 60.0)])
        previous = total
    with u.store.session() as s:
        assert s.scalar(select(func.count()).select_from(HourlyRow)) == 3  # 22h, 23h, 00h (the last sample)
        assert s.scalar(select(func.count()).select_from(DailyRow)) == 2
        assert s.scalar(select(func.sum(DailyRow.cpu_seconds))) == 3600.0
        assert s.scalar(select(SessionRow.last_seen)) == T0 + timedelta(minutes=120)
    (row,) = u.report(by="user", since=T0 - timedelta(days=2), until=T0 + timedelta(days=2))
    assert row.cpu_seconds == 3600.0
    assert abs(row.memory_gib_hours - 2.0) < 1e-9
    (group,) = u.report(by="group", since=T0 - timedelta(days=2), until=T0 + timedelta(days=2))
    assert group.key == "physics" and group.cpu_seconds == 3600.0
    # a window of one hour inside the first day reads that hour's roll-up
    (row,) = u.report(by="user", since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=1, minutes=59))
    assert row.cpu_seconds == 59 * 30.0 + 30.0  # 23:01 .. 00:00 samples are in the 23h row but one


def test_trimming_keeps_each_table_its_days(db_url: str) -> None:
    u = UsageLedger(Store(db_url))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for days in (1, 8, 91, 731):
        t = now - timedelta(days=days)
        u.open_session("alice", "", t, [])
        u.record_samples([Sample(t, "alice", "", "c", 1.0, 1.0, 1, 60.0)])
        u.close_session("alice", "", t + timedelta(minutes=1))
        u.record_storage([("v", "alice", "home", 1)], t)
    counts = u.trim(raw_days=7, hourly_days=90, daily_days=730, now=now)
    assert counts == {"samples": 3, "hourly": 2, "daily": 1, "storage": 1, "sessions": 1}
    with u.store.session() as s:
        assert s.scalar(select(func.count()).select_from(SampleRow)) == 1
        assert s.scalar(select(func.count()).select_from(HourlyRow)) == 2
        assert s.scalar(select(func.count()).select_from(DailyRow)) == 3
        assert s.scalar(select(func.count()).select_from(StorageRow)) == 3
        assert s.scalar(select(func.count()).select_from(SessionRow)) == 3


def test_raw_samples_are_compact_and_attributed_to_their_session(db_url: str) -> None:
    u = UsageLedger(Store(db_url))
    u.open_session("a", "", T0, ["g"])
    u.record_samples([Sample(T0 + timedelta(seconds=60), "a", "", "c1", 9.0, 1.2345, 3 * 1024**2, 60.0)])
    u.record_samples([Sample(T0 + timedelta(seconds=60), "b", "", "c2", 2.0, 2.0, 1, 60.0)])  # no session yet
    with u.store.session() as s:
        (row,) = s.scalars(select(SampleRow))
        (session_id,) = s.scalars(select(SessionRow.id))
        assert (row.time, row.session, row.cpu_ms, row.memory_kib, row.interval_ms) == (
            int((T0 + timedelta(seconds=60)).timestamp()),
            session_id,
            1234,
            3072,
            60000,
        )
        assert s.scalar(select(func.count()).select_from(HourlyRow)) == 2  # b's in the roll-ups all the same
