"""`GET /hub/api/users/<name>/quota` serves what the Quota watch stored at its last look
(`quota_check.figures`), with that look's time, and computes the figures anew only where
the look no longer holds: none yet, too old, a grant since, other policies or groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub_config import quota_check
from reconciler.api.grouppolicy import GroupPolicySpec
from reconciler.api.quota import QuotaStatus
from reconciler.effective import NamedGroupPolicy
from reconciler.quotas import QUOTA_KIND, Grant, Use, combine_quota, combine_storage, decide, storage_limits_json
from reconciler.store import Store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LOOKED = NOW - timedelta(seconds=20)
SPEC = {"groups": ["t"], "quota": {"serverHours": 1, "window": "1d"}, "storage": {"home": {"softLimit": "1G"}}}
USED = {"server": Use(5400.0, [(NOW - timedelta(hours=2), 5400.0)])}  # 1.5 of 1 h: refused


def policies(spec: dict[str, Any] = SPEC) -> list[NamedGroupPolicy]:
    return [NamedGroupPolicy("team", GroupPolicySpec.model_validate(spec))]


@pytest.fixture
def store(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A store with the watch's look at ann 20 s ago; the ledger reads counted in `computed`."""
    store = Store(db_url)
    quota = combine_quota(["t"], policies())
    assert quota is not None
    decision = decide(USED, quota, [], LOOKED)
    status = QuotaStatus(phase="Ready", checked=LOOKED, quota=quota.as_dict(), refused=decision.refused)
    status.limits = [s.as_dict() for s in decision.limits]
    status.storage = [{"key": "home", "volume": "v", "bytes": 5, "softLimit": 1e9, "over": False}]
    status.storage_limits = storage_limits_json(combine_storage(["t"], policies()))
    store.write_observed(QUOTA_KIND, "ann", status.dump())
    store.computed = []  # type: ignore[attr-defined]
    monkeypatch.setattr(quota_check, "group_policies", lambda s: policies())
    monkeypatch.setattr(quota_check, "user_usage", lambda s, user, q, now: store.computed.append(now) or {})  # type: ignore[attr-defined]
    monkeypatch.setattr(quota_check, "user_storage", lambda s, user: [])
    return store


def test_the_watchs_look_is_served_with_its_time(store: Store) -> None:
    answer = quota_check.figures(store, "ann", ["t"], NOW, fresh_for=180)
    assert store.computed == []  # type: ignore[attr-defined]
    assert answer["at"] == LOOKED.isoformat().replace("+00:00", "Z")
    assert answer["refused"] and answer["limits"][0]["usedHours"] == 1.5 and answer["limits"][0]["full"]
    assert answer["message"].startswith("You cannot start a server: your server-hours quota of policy team")
    assert "it frees up at 2026-12-02 11:00 UTC" in answer["message"]
    assert answer["storage"][0]["volume"] == "v" and answer["storageLimits"]["home"]["softLimit"] == 2**30
    assert answer["grants"] == []
    # The same keys as an answer computed now (clients read one shape).
    assert set(answer) == set(quota_check.view(store, "ann", ["t"], NOW))


def test_a_grant_since_the_look_is_counted_at_once(store: Store) -> None:
    quota_check.record_grant(store, "ann", Grant(NOW - timedelta(seconds=5), "server", 2.0, "user:op"), "user:op")
    answer = quota_check.figures(store, "ann", ["t"], NOW, fresh_for=180)
    assert store.computed == [NOW] and answer["at"] == NOW.isoformat().replace("+00:00", "Z")  # type: ignore[attr-defined]
    assert answer["limits"][0]["limitHours"] == 3.0 and not answer["refused"]


@pytest.mark.parametrize(
    ("groups", "spec", "fresh_for"),
    [
        (["t"], SPEC, 10),  # the look is older than the watch's period allows: the reconciler is behind
        (["t"], {**SPEC, "quota": {"serverHours": 2, "window": "1d"}}, 180),  # the policy changed
        (["t"], {**SPEC, "storage": {"home": {"softLimit": "2G"}}}, 180),  # its soft limit changed
        (["t", "u"], {**SPEC, "groups": ["t", "u"], "quota": None}, 180),  # no quota now
    ],
)
def test_a_look_that_no_longer_holds_is_computed_anew(
    store: Store, monkeypatch: pytest.MonkeyPatch, groups: list[str], spec: dict[str, Any], fresh_for: float
) -> None:
    monkeypatch.setattr(quota_check, "group_policies", lambda s: policies(spec))
    answer = quota_check.figures(store, "ann", groups, NOW, fresh_for=fresh_for)
    assert answer["at"] == NOW.isoformat().replace("+00:00", "Z")
    assert answer["storageLimits"] == storage_limits_json(combine_storage(groups, policies(spec)))


def test_a_user_the_watch_has_not_looked_at_is_computed(store: Store) -> None:
    answer = quota_check.figures(store, "bob", ["t"], NOW, fresh_for=180)
    assert store.computed == [NOW] and answer["quota"] is not None  # type: ignore[attr-defined]
