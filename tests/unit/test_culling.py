"""Idle culling's decisions (pure logic): which policy wins, deadlines, notices, keep-alive,
dry run, skipped servers; and the IdleCullPolicy spec's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from reconciler import culling
from reconciler.api.idlecullpolicy import CulledServer, IdleCullPolicySpec
from reconciler.culling import NamedPolicy, ServerView
from reconciler.manifests import ManifestError, parse_manifests

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def spec(**fields: object) -> IdleCullPolicySpec:
    return IdleCullPolicySpec.model_validate({"idleTimeout": "40s", "warnBefore": "20s", **fields})


def server(idle: float, *, age: float = 3600, pending: str | None = None, user: str = "ann") -> ServerView:
    return ServerView(
        user, "", frozenset({"gpu"}), NOW - timedelta(seconds=age), NOW - timedelta(seconds=idle), pending, True
    )


def test_highest_priority_wins_then_name() -> None:
    gpu = NamedPolicy("gpu", spec(selector={"groups": ["gpu"]}, priority=10))
    staff = NamedPolicy("staff", spec(selector={"groups": ["staff"]}, priority=20))
    everyone = NamedPolicy("everyone", spec(priority=-1000))
    assert culling.winner("ann", {"gpu"}, [everyone, gpu, staff]).name == "gpu"
    assert culling.winner("ann", {"gpu", "staff"}, [everyone, gpu, staff]).name == "staff"
    assert culling.winner("bob", set(), [everyone, gpu, staff]).name == "everyone"
    assert culling.winner("bob", set(), [gpu, staff]) is None
    tie = NamedPolicy("a-tie", spec(selector={"users": ["ann"]}, priority=10))
    assert culling.winner("ann", {"gpu"}, [gpu, tie]).name == "a-tie"


def test_active_server_waits_for_its_notice_time() -> None:
    d = culling.decide(server(idle=5), spec(), None, None, None, NOW)
    assert d.action == "none"
    assert d.entry.deadline == NOW + timedelta(seconds=35)
    assert d.wake_at == NOW + timedelta(seconds=15)  # the notice is due 20 s before
    assert d.entry.idle_seconds == 5


def test_notice_once_per_deadline_and_own_request_is_not_activity() -> None:
    d = culling.decide(server(idle=25), spec(), None, None, None, NOW)
    assert d.action == "warn"
    # After the notice, the hub saw our request through the proxy as activity: ignored.
    warned = d.entry.model_copy(
        update={"warned_at": NOW, "warned_for": d.entry.deadline, "activity_at_warning": d.entry.last_activity}
    )
    later = NOW + timedelta(seconds=5)
    own = ServerView("ann", "", frozenset(), NOW - timedelta(hours=1), NOW + timedelta(seconds=1), None, True)
    again = culling.decide(own, spec(), warned, None, None, later)
    assert again.action == "none" and again.entry.state == "Warned"
    assert again.entry.deadline == d.entry.deadline
    # At the deadline, it is stopped.
    assert culling.decide(own, spec(), warned, None, None, d.entry.deadline).action == "stop"


def test_activity_after_the_notice_cancels_the_stop() -> None:
    warned = CulledServer(
        user="ann",
        warned_at=NOW,
        warned_for=NOW + timedelta(seconds=15),
        activity_at_warning=NOW - timedelta(seconds=25),
    )
    used = ServerView("ann", "", frozenset(), NOW - timedelta(hours=1), NOW + timedelta(seconds=10), None, True)
    d = culling.decide(used, spec(), warned, None, None, NOW + timedelta(seconds=16))
    assert d.action == "none"
    assert d.entry.deadline == NOW + timedelta(seconds=50)
    assert d.entry.state == "Active"


def test_keep_alive_moves_the_deadline_and_is_capped() -> None:
    policy = spec(maxExtension="30m")
    until, granted = culling.keep_alive_grant(policy, 120, NOW)
    assert granted == 30 and until == NOW + timedelta(minutes=30)
    d = culling.decide(server(idle=39), policy, None, until, None, NOW)
    assert d.entry.deadline == until and d.entry.state == "Kept" and d.action == "none"
    assert culling.keep_until({"until": (NOW - timedelta(seconds=1)).isoformat()}, NOW) is None


def test_max_age_is_a_hard_limit() -> None:
    policy = spec(maxAge="1h", maxExtension="8h")
    until, _ = culling.keep_alive_grant(policy, 480, NOW)
    d = culling.decide(server(idle=0, age=3600), policy, None, until, None, NOW)
    assert d.action == "stop" and d.entry.reason == "maxAge"


def test_dry_run_reports_once_and_warns_nobody() -> None:
    policy = spec(dryRun=True)
    assert culling.decide(server(idle=25), policy, None, None, None, NOW).action == "none"
    first = culling.decide(server(idle=50), policy, None, None, None, NOW)
    assert first.action == "would-stop" and first.entry.state == "WouldStop"
    assert culling.decide(server(idle=50), policy, first.entry, None, None, NOW).action == "none"


@pytest.mark.parametrize(("pending", "busy"), [("spawn", None), (None, "ServerRestart/restart-ann is pending")])
def test_due_server_with_pending_work_is_skipped(pending: str | None, busy: str | None) -> None:
    d = culling.decide(server(idle=60, pending=pending), spec(), None, None, busy, NOW)
    assert d.action == "skip" and d.entry.state == "Skipped"
    assert (pending or "ServerRestart") in d.entry.message


def test_servers_from_the_hubs_user_models_include_named_servers() -> None:
    users = [
        {
            "name": "ann",
            "groups": ["gpu"],
            "servers": {
                "": {"started": "2026-12-01T11:00:00.000000Z", "last_activity": "2026-12-01T11:59:00Z", "ready": True},
                "big": {"started": "2026-12-01T11:30:00Z", "last_activity": None, "pending": "spawn"},
            },
        }
    ]
    views = culling.servers_from_users(users)
    assert [(v.server, v.pending) for v in views] == [("", None), ("big", "spawn")]
    assert views[0].last_activity == datetime(2026, 12, 1, 11, 59, tzinfo=UTC)
    assert culling.decide(views[1], spec(), None, None, None, NOW).entry.last_activity == views[1].started


def test_notice_says_when_and_how_to_keep() -> None:
    entry = CulledServer(user="ann", deadline=NOW + timedelta(minutes=10), reason="idle")
    text = culling.notice(entry, NOW, "https://hub.example/hub/home")
    assert "12:10 UTC" in text and "in 10 min" in text and "Keep my server" in text


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"warnBefore": "1m"}, "warnBefore (60 s) must be shorter than idleTimeout (40 s)"),
        ({"selector": {}}, "omit selector to cover everyone"),
        ({"idleTimeout": 0}, "above 0"),
        ({"maxAge": "-5"}, "duration"),
        ({"priority": 5000}, "less than or equal to 1000"),
        ({"dryrun": True}, "Extra inputs are not permitted"),
    ],
)
def test_spec_rules(fields: dict, problem: str) -> None:
    with pytest.raises(ValidationError) as e:
        spec(**fields)
    assert problem in str(e.value)


def test_manifest_error_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "cull.yaml"
    path.write_text(
        "apiVersion: jupyterhub-ds/v1\nkind: IdleCullPolicy\nmetadata: {name: gpu}\n"
        "spec:\n  idleTimeout: 2h\n  warnbefore: 10m\n"
    )
    with pytest.raises(ManifestError) as e:
        parse_manifests(path.read_text(), str(path))
    assert f"{path}:6" in str(e.value) and "warnBefore" in str(e.value)


def test_a_rollout_holds_the_servers_it_warned_or_is_restarting() -> None:
    status = {
        "servers": [
            {"user": "ann", "state": "Warned"},
            {"user": "bob", "state": "Restarting"},
            {"user": "cid", "state": "Pending"},
            {"user": "dee", "state": "Restarted"},
        ]
    }
    assert culling.rollout_held([("r1", status), ("r2", {})]) == {
        "ann": "RolloutRestart/r1",
        "bob": "RolloutRestart/r1",
    }
