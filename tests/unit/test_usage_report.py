"""The usage ledger's sessions and report: a synthetic start/stop trace gives exact server
time; the hub's record and the reconciler's resync make one session, never two."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.store import Store
from reconciler.usage.ledger import UsageLedger
from reconciler.usage.report import NO_GROUP, report_json, server_seconds_over_time, storage_by_user, usage_report
from reconciler.usage.sessions import ActiveServer

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ledger(db_url: str) -> UsageLedger:
    return UsageLedger(Store(db_url))


def test_a_synthetic_trace_gives_exact_server_seconds(db_url: str) -> None:
    u = ledger(db_url)
    trace = [  # user, server, start, stop (minutes after T0), groups
        ("alice", "", 0, 90.5, ["physics"]),
        ("alice", "", 120, 121.25, ["physics"]),
        ("alice", "gpu", 30, 45, ["physics"]),
        ("bob", "", 10, 70, ["chemistry", "physics"]),
        ("carol", "", 5, 6, []),
    ]
    for user, server, start, stop, groups in trace:
        assert u.open_session(user, server, at(start), groups)
        assert u.close_session(user, server, at(stop)) == 1
    rows = {r.key: r for r in u.report(by="user", since=at(-60), until=at(600))}
    assert rows["alice"].server_seconds == (90.5 + 1.25 + 15) * 60
    assert rows["bob"].server_seconds == 60 * 60
    assert rows["carol"].server_seconds == 60
    assert rows["bob"].groups == ["chemistry", "physics"]
    groups = {r.key: r for r in u.report(by="group", since=at(-60), until=at(600))}
    assert groups["physics"].server_seconds == (90.5 + 1.25 + 15 + 60) * 60
    assert groups["chemistry"].server_seconds == 3600
    assert groups[NO_GROUP].server_seconds == 60
    # a window cuts sessions at its edges, exactly
    cut = {r.key: r for r in u.report(by="user", since=at(40), until=at(60))}
    assert cut["alice"].server_seconds == (20 + 5) * 60
    assert cut["bob"].server_seconds == 20 * 60
    assert "carol" not in cut
    only = u.report(by="group", since=at(-60), until=at(600), users=["bob"])
    assert {r.key: r.server_seconds for r in only} == {"chemistry": 3600, "physics": 3600}


def test_an_open_session_counts_up_to_until(db_url: str) -> None:
    u = ledger(db_url)
    now = datetime.now(UTC)
    u.open_session("dan", "", now - timedelta(hours=2), ["g"])
    (row,) = u.report(by="user", since=now - timedelta(days=1), until=now - timedelta(hours=1))
    assert row.server_seconds == 3600
    (row,) = u.report(by="user", since=now - timedelta(days=1), until=now + timedelta(days=1))
    assert 7199 < row.server_seconds < 7300  # up to now, not to `until`


def test_the_hubs_record_and_the_resync_make_one_session(db_url: str) -> None:
    u = ledger(db_url)
    u.open_session("alice", "", at(0), ["g"])
    # the resync sees the same server (same started): nothing new
    squared = u.square([ActiveServer("alice", "", at(0), ("g",))], now=at(10))
    assert squared.opened == [] and squared.closed == []
    # a server that started while the hub's write was lost (or before the ledger existed)
    squared = u.square([ActiveServer("alice", "", at(0), ("g",)), ActiveServer("bob", "", at(3), ("h",))], now=at(20))
    assert squared.opened == [("bob", "")]
    # alice's server is gone and its stop was never recorded: closed at the last resync (20)
    squared = u.square([ActiveServer("bob", "", at(3), ("h",))], now=at(30))
    assert squared.closed == [("alice", "")]
    rows = {r.key: r for r in u.report(by="user", since=at(-1), until=at(40))}
    assert rows["alice"].server_seconds == 20 * 60
    assert rows["bob"].server_seconds == 37 * 60  # open, counted to `until`
    # the hub closes bob's; a late resync that still lists him does not reopen it
    u.close_session("bob", "", at(35))
    assert u.square([ActiveServer("bob", "", at(3), ("h",))], now=at(36)).opened == []
    assert [s.stopped for s in u.sessions_of("bob")] == [at(35)]


def test_the_hubs_stop_replaces_the_resyncs_guess(db_url: str) -> None:
    # JupyterHub forgets a stopped server before its post-stop hook records the stop: a
    # resync in between closes the session at its last sighting; the hub's time wins.
    u = ledger(db_url)
    u.open_session("alice", "", at(0), [])
    u.square([ActiveServer("alice", "", at(0))], now=at(10))
    assert u.square([], now=at(11)).closed == [("alice", "")]
    assert u.sessions_of("alice")[0].stopped == at(10)
    assert u.close_session("alice", "", at(10.5)) == 1
    assert u.sessions_of("alice")[0].stopped == at(10.5)
    assert u.close_session("alice", "", at(9)) == 0  # never earlier than what is known
    u.open_session("alice", "", at(20), [])
    u.close_session("alice", "", at(30))
    assert u.close_session("alice", "", at(40)) == 0  # the hub's own stop is not moved
    assert [r.stopped for r in u.sessions_of("alice")] == [at(10.5), at(30)]


def test_a_new_start_closes_a_session_whose_stop_was_missed(db_url: str) -> None:
    u = ledger(db_url)
    u.open_session("alice", "", at(0), [])
    u.square([ActiveServer("alice", "", at(0))], now=at(5))  # seen at 5
    u.open_session("alice", "", at(60), [])  # the hub restarted it; its stop was never seen
    first, second = u.sessions_of("alice")
    assert first.stopped == at(5) and second.stopped is None
    assert u.close_session("alice", "", None) == 1  # no time known: the newest it was seen
    assert u.sessions_of("alice")[1].stopped == at(60)


def test_over_time_splits_sessions_into_buckets(db_url: str) -> None:
    u = ledger(db_url)
    u.open_session("alice", "", at(30), ["a"])  # 09:30 .. 11:15
    u.close_session("alice", "", at(135))
    with u.store.session() as s:
        series = server_seconds_over_time(s, by="group", since=at(0), until=at(180), step="hour")
    assert series == [
        {"t": "2026-11-01T09:00:00Z", "a": 1800.0},
        {"t": "2026-11-01T10:00:00Z", "a": 3600.0},
        {"t": "2026-11-01T11:00:00Z", "a": 900.0},
    ]


def test_storage_counts_the_newest_survey(db_url: str) -> None:
    u = ledger(db_url)
    u.open_session("alice", "", at(0), ["a"])
    u.record_storage([("jhds-alice-home", "alice", "home", 100), ("jhds-bob-home", "bob", "home", 7)], at(10))
    u.record_storage([("jhds-alice-home", "alice", "home", 300)], at(24 * 60 + 10))  # next day: bob's gone
    with u.store.session() as s:
        assert storage_by_user(s) == [
            {
                "user": "alice",
                "volume": "jhds-alice-home",
                "kind": "home",
                "bytes": 300,
                "surveyed": "2026-11-02T09:10:00Z",
            }
        ]
        first_day = usage_report(s, by="user", since=at(0), until=at(60))
        doc = report_json(first_day, by="user", since=at(0), until=at(60))
    assert {r["user"]: r["storageBytes"] for r in doc["rows"]} == {"alice": 100, "bob": 7}
    assert doc["since"] == "2026-11-01T09:00:00Z" and doc["by"] == "user"
    assert set(doc["rows"][0]) == {
        "user",
        "groups",
        "serverSeconds",
        "cpuSeconds",
        "memoryGiBHours",
        "gpuSeconds",
        "storageBytes",
    }
    groups = {r.key: r.storage_bytes for r in u.report(by="group", since=at(0), until=at(48 * 60))}
    assert groups == {"a": 300}


def test_a_pending_server_keeps_its_session_and_a_newer_session_is_not_closed(db_url: str) -> None:
    """The hub records a start when the spawner's start returns; its REST answer calls the
    server ready a moment later (the proxy's route). A resync in between must not close it;
    nor may it close a session opened after it asked the hub."""
    u = ledger(db_url)
    u.open_session("alice", "", at(0), ["g"])
    squared = u.square([ActiveServer("alice", "", at(0), ("g",), ready=False)], now=at(1))
    assert squared.closed == [] and u.sessions_of("alice")[0].stopped is None
    candidates = u.open_ids()
    u.open_session("bob", "", at(2), [])  # the hub opened it after the listing was taken
    squared = u.square([ActiveServer("alice", "", at(0), ("g",))], now=at(3), candidates=candidates)
    assert squared.closed == [] and u.sessions_of("bob")[0].stopped is None
    assert u.square([], now=at(4)).closed == [("alice", ""), ("bob", "")]
    # a pending server without a session is not opened until it is ready
    assert u.square([ActiveServer("carl", "", at(5), (), ready=False)], now=at(6)).opened == []
