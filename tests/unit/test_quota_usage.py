"""A user's use in their quota's windows as the ledger holds it (`quota_usage`), on a real
store: totals from the report, server time cut into hourly buckets from the sessions (an
open one up to now), CPU from the hourly roll-up, and when a full quota frees up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.api.grouppolicy import GroupPolicySpec
from reconciler.effective import NamedGroupPolicy
from reconciler.quota_usage import user_storage, user_usage
from reconciler.quotas import combine_quota, decide
from reconciler.store import Store
from reconciler.usage.ledger import UsageLedger
from reconciler.usage.tables import HourlyRow

NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
QUOTA = combine_quota(
    ["t"],
    [
        NamedGroupPolicy(
            "team",
            GroupPolicySpec.model_validate(
                {"groups": ["t"], "quota": {"serverHours": 2, "cpuHours": 1, "window": "1d"}}
            ),
        )
    ],
)
assert QUOTA is not None


def test_totals_buckets_and_when_it_frees_up(db_url: str) -> None:
    store = Store(db_url)
    empty = user_usage(store, "ann", QUOTA, NOW)  # the tables made on first read
    assert {k: (u.seconds, list(u.buckets)) for k, u in empty.items()} == {"server": (0, []), "cpu": (0, [])}
    ledger = UsageLedger(store)
    ledger.open_session("ann", "", NOW - timedelta(hours=30), ["t"])  # began before the window: its last 30 min count
    ledger.close_session("ann", "", NOW - timedelta(hours=23, minutes=30))
    ledger.open_session("ann", "", NOW - timedelta(minutes=45), ["t"])  # open: up to now
    ledger.open_session("bob", "", NOW - timedelta(hours=3), ["t"])  # someone else's
    with store.session() as s:
        s.add(HourlyRow(user="ann", server="", period=NOW.replace(minute=0) - timedelta(hours=2), cpu_seconds=3000.0))
        s.add(HourlyRow(user="ann", server="", period=NOW.replace(minute=0), cpu_seconds=1200.0))

    use = user_usage(store, "ann", QUOTA, NOW)
    assert use["server"].seconds == 30 * 60 + 45 * 60  # 11:30-12:00 of yesterday's, and the open one
    buckets = dict(use["server"].buckets)
    assert buckets[datetime(2026, 11, 30, 12, 0, tzinfo=UTC)] == 30 * 60  # cut at the window's start
    assert buckets[datetime(2026, 12, 1, 11, 0, tzinfo=UTC)] == 15 * 60
    assert buckets[datetime(2026, 12, 1, 12, 0, tzinfo=UTC)] == 30 * 60
    assert use["cpu"].seconds == 4200 and dict(use["cpu"].buckets)[datetime(2026, 12, 1, 10, 0, tzinfo=UTC)] == 3000

    decision = decide(use, QUOTA, [], NOW)
    server, cpu = decision.limits
    assert not server.full and cpu.full  # 1.17 of 1 CPU-hour
    # 600 s over: the 10:00 bucket (3000 s) must leave the window: at 11:00 tomorrow.
    assert cpu.frees_at == datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


def test_storage_of_one_user_from_the_newest_survey(db_url: str) -> None:
    store = Store(db_url)
    assert user_storage(store, "ann") == []
    ledger = UsageLedger(store)
    ledger.record_storage([("v-ann-home", "ann", "home", 5), ("v-bob-home", "bob", "home", 7)], NOW)
    assert [(r["volume"], r["kind"], r["bytes"]) for r in user_storage(store, "ann")] == [("v-ann-home", "home", 5)]
