"""Quotas and storage soft limits: the spec's rules (with file and line), how policies
combine, and the decision (percent, thresholds, refusal, when it frees up, grants, notices)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from reconciler.api.grouppolicy import GroupPolicySpec
from reconciler.effective import NamedGroupPolicy
from reconciler.manifests import ManifestError, parse_manifests
from reconciler.quotas import (
    Grant,
    Use,
    combine_quota,
    combine_storage,
    decide,
    frees_at,
    granted_hours,
    quota_notice,
    quota_notices_due,
    refusal_message,
    storage_notice,
    storage_notices_due,
    storage_states,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = 86400
H = 3600


def policy(name: str, **spec: object) -> NamedGroupPolicy:
    return NamedGroupPolicy(name, GroupPolicySpec.model_validate(spec))


# --- the spec ------------------------------------------------------------------------------


def test_quota_and_storage_parse_with_defaults() -> None:
    spec = GroupPolicySpec.model_validate(
        {"groups": ["ml"], "quota": {"serverHours": 200, "window": "30d"}, "storage": {"home": {"softLimit": "10G"}}}
    )
    assert spec.quota is not None
    assert (spec.quota.server_hours, spec.quota.cpu_hours, spec.quota.window, spec.quota.enforce) == (
        200,
        None,
        30 * DAY,
        "spawn",
    )
    assert spec.storage["home"].bytes == 10 * 1024**3
    assert spec.storage["home"].warn_at == [80, 95]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"quota": {"window": "30d"}}, "at least one of serverHours"),
        ({"quota": {"serverHours": 0}}, "greater than 0"),
        ({"quota": {"serverHours": 1, "window": "10m"}}, "from 1h to 366d"),
        ({"quota": {"serverHours": 1, "window": "soon"}}, "must be a duration"),
        ({"quota": {"serverHours": 1, "enforce": "kill"}}, "'spawn' or 'stop'"),
        ({"quota": {"serverhours": 1}}, "Extra inputs"),
        ({"storage": {"home": {"softLimit": "lots"}}}, "must be a size"),
        ({"storage": {"home": {"softLimit": "10K"}}}, "at least 1M"),
        ({"storage": {"home": {"softLimit": "1G", "warnAt": [95, 80]}}}, "rising percentages"),
        ({"storage": {"home": {"softLimit": "1G", "warnAt": [80, 120]}}}, "rising percentages"),
        ({"storage": {"Home!": {"softLimit": "1G"}}}, "must be a volume key"),
    ],
)
def test_bad_quotas_are_refused(spec: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GroupPolicySpec.model_validate({"groups": ["ml"], **spec})


def test_a_bad_quota_names_file_and_line() -> None:
    text = """apiVersion: jupyterhub-ds/v1
kind: GroupPolicy
metadata: {name: team}
spec:
  groups: [team]
  quota:
    serverHours: 20
    window: 5m
  storage:
    home: {softLimit: 2X}
"""
    with pytest.raises(ManifestError) as e:
        parse_manifests(text, "team.yaml")
    shown = sorted(str(i) for i in e.value.issues)
    assert shown[0].startswith("team.yaml:10: spec.storage.home.softLimit: "), shown
    assert shown[1].startswith("team.yaml:8: spec.quota.window: "), shown
    assert "from 1h to 366d" in shown[1]


# --- combining -----------------------------------------------------------------------------


def test_the_most_generous_limit_wins_per_field() -> None:
    a = policy("a", groups=["a"], priority=10, quota={"serverHours": 100, "cpuHours": 50, "window": "30d"})
    b = policy("b", groups=["b"], quota={"serverHours": 10, "window": "1d", "gpuHours": 5})
    q = combine_quota(["a", "b"], [a, b])
    assert q is not None
    # 10 h a day beats 100 h in 30 days; cpu only from a; gpu only from b.
    assert (q.limits["server"].hours, q.limits["server"].window, q.limits["server"].policy) == (10, DAY, "b")
    assert (q.limits["cpu"].hours, q.limits["cpu"].policy) == (50, "a")
    assert (q.limits["gpu"].hours, q.limits["gpu"].window) == (5, DAY)
    assert q.enforce == "spawn"
    assert q.window == 30 * DAY


def test_no_quota_policy_means_no_quota_and_stop_needs_every_policy() -> None:
    plain = policy("plain", groups=["a"], resources={"memory": "1G"})
    assert combine_quota(["a"], [plain]) is None
    stop = policy("stop", groups=["a"], quota={"serverHours": 5, "enforce": "stop"})
    stop2 = policy("stop2", groups=["b"], quota={"serverHours": 1, "enforce": "stop"})
    spawn = policy("spawn", groups=["c"], quota={"cpuHours": 5})
    assert combine_quota(["a", "b"], [plain, stop, stop2]).enforce == "stop"  # type: ignore[union-attr]
    assert combine_quota(["a", "c"], [stop, spawn]).enforce == "spawn"  # type: ignore[union-attr]
    suspended = policy("off", groups=["a"], quota={"serverHours": 1}, suspend=True)
    assert combine_quota(["a"], [suspended]) is None


def test_storage_largest_soft_limit_per_volume_key() -> None:
    a = policy("a", groups=["a"], storage={"home": {"softLimit": "10G"}, "cache": {"softLimit": "1G"}})
    b = policy("b", groups=["b"], storage={"home": {"softLimit": "20G", "warnAt": [90]}})
    limits = combine_storage(["a", "b"], [a, b])
    assert limits["home"].bytes == 20 * 1024**3 and limits["home"].warn_at == (90,) and limits["home"].policy == "b"
    assert limits["cache"].bytes == 1024**3


# --- the decision --------------------------------------------------------------------------

QUOTA = combine_quota(["t"], [policy("team", groups=["t"], quota={"serverHours": 10, "window": "1d"})])
assert QUOTA is not None


def hourly(*pairs: tuple[int, float]) -> list[tuple[datetime, float]]:
    """Buckets at `hours ago` with `hours` of use each."""
    return [(NOW - timedelta(hours=ago), hours * H) for ago, hours in pairs]


def test_percent_thresholds_and_refusal() -> None:
    d = decide({"server": Use(8.5 * H)}, QUOTA, [], NOW)
    (s,) = d.limits
    assert (round(s.percent), s.crossed, s.full, d.refused, s.frees_at) == (85, (80,), False, False, None)
    d = decide({"server": Use(9.6 * H)}, QUOTA, [], NOW)
    assert d.limits[0].crossed == (80, 95) and not d.refused
    d = decide({"server": Use(10 * H, hourly((20, 6), (5, 4)))}, QUOTA, [], NOW)
    assert d.refused and d.limits[0].percent == 100


def test_frees_up_when_enough_use_leaves_the_window() -> None:
    # 12 h used, limit 10: the 6 h bucket 20 h ago must leave: at its end plus one day.
    use = Use(12 * H, hourly((20, 6), (5, 6)))
    start = NOW - timedelta(hours=20)
    assert frees_at(use, 10 * H, DAY, NOW) == start + timedelta(seconds=H + DAY)
    # Exactly at the limit: the first bucket with any use frees it.
    assert frees_at(Use(10 * H, hourly((20, 6), (5, 4))), 10 * H, DAY, NOW) == start + timedelta(seconds=H + DAY)
    # Below: nothing to wait for; use not in the buckets: a whole window from now.
    assert frees_at(Use(9 * H), 10 * H, DAY, NOW) is None
    assert frees_at(Use(11 * H), 10 * H, DAY, NOW) == NOW + timedelta(days=1)


def test_grants_extend_the_window_once() -> None:
    grant = Grant(NOW - timedelta(hours=2), "server", 5, "op")
    old = Grant(NOW - timedelta(days=2), "server", 50, "op")
    other = Grant(NOW, "cpu", 5, "op")
    assert granted_hours([grant, old, other], "server", DAY, NOW) == 5
    d = decide({"server": Use(12 * H)}, QUOTA, [grant, old, other], NOW)
    (s,) = d.limits
    assert (s.limit_hours, s.granted_hours, d.refused) == (15, 5, False)
    # The grant lapses when it leaves the window: the same use is refused again.
    later = NOW + timedelta(hours=23)
    assert decide({"server": Use(12 * H)}, QUOTA, [grant], later).refused
    assert Grant.load(grant.as_dict()) == grant


def test_refusal_message_names_quota_figures_and_when() -> None:
    d = decide({"server": Use(10.5 * H, hourly((20, 6), (5, 4.5)))}, QUOTA, [], NOW)
    message = refusal_message(d)
    assert message is not None
    assert "server-hours quota of policy team" in message
    assert "10.50 of 10 h in the last 1 days (105 %)" in message
    assert "frees up at 2026-12-01 17:00 UTC" in message  # 20 h ago + 1 h + 1 day
    assert refusal_message(decide({"server": Use(1 * H)}, QUOTA, [], NOW)) is None


def test_one_notice_per_threshold_per_window() -> None:
    d = decide({"server": Use(9.7 * H)}, QUOTA, [], NOW)
    due = quota_notices_due(d, {}, NOW)
    assert [(s.kind, t) for s, t in due] == [("server", 95)]  # both crossed at once: one notice
    assert quota_notices_due(d, {"server": {"95": NOW - timedelta(hours=1)}}, NOW) == []
    assert quota_notices_due(d, {"server": {"95": NOW - timedelta(days=2)}}, NOW) != []  # a new window
    full = decide({"server": Use(10 * H)}, QUOTA, [], NOW)
    ((s, t),) = quota_notices_due(full, {"server": {"95": NOW}}, NOW)
    assert t == 100
    assert "being stopped" in quota_notice(s, 100, "stop")
    assert "no new server can be started" in quota_notice(s, 100, "spawn")
    assert "80 %" not in quota_notice(d.limits[0], 95, "spawn") and "97 %" in quota_notice(d.limits[0], 95, "spawn")


def test_storage_states_and_notices() -> None:
    limits = combine_storage(["t"], [policy("team", groups=["t"], storage={"home": {"softLimit": "10M"}})])
    rows = [
        {"user": "a", "volume": "jupyterlab-a_home", "kind": "home", "bytes": 9 * 1024**2, "surveyed": "x"},
        {"user": "a", "volume": "jupyterlab-a_cache", "kind": "cache", "bytes": 99 * 1024**2, "surveyed": "x"},
    ]
    (s,) = storage_states(rows, limits)
    assert (s.key, round(s.percent), s.crossed, s.over) == ("home", 90, (80,), False)
    due, told = storage_notices_due([s], {})
    assert due == [s] and told == {"home": [80]}
    assert storage_notices_due([s], told) == ([], {"home": [80]})
    (big,) = storage_states([{**rows[0], "bytes": 11 * 1024**2}], limits)
    due, told = storage_notices_due([big], told)
    assert due == [big] and told == {"home": [80, 95]}
    assert "11.0 MiB, over 110 % of its soft limit of 10.0 MiB" in storage_notice(big)
    # Cleaned up below the thresholds: forgotten, so crossing again tells again.
    (small,) = storage_states([{**rows[0], "bytes": 1024**2}], limits)
    assert storage_notices_due([small], told) == ([], {})
