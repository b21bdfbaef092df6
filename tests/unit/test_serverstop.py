"""ServerStop: its spec's refusals, and its controller against a fake hub and fake labs: the
stop time recorded before the notice, the wait as a requeue, a resumed wait that neither
warns again nor stops early, servers that stopped (or were started) meanwhile, one that
does not stop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.api.fields import MESSAGE_MAX
from reconciler.api.serverstop import ServerStopSpec, ServerStopStatus
from reconciler.clients import lab
from reconciler.controllers import serverstop
from reconciler.errors import TemporaryError
from reconciler.store import StoredResource

CREATED = datetime.now(UTC) - timedelta(seconds=30)
BEFORE = (CREATED - timedelta(hours=1)).isoformat()  # when the chosen servers started
SPEC = {"selector": {"groups": ["course"]}, "warnBefore": 0, "reason": "Host maintenance at 18:00."}


# --- the spec ----------------------------------------------------------------------------------


def refusal(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        ServerStopSpec.model_validate(spec)
    return str(info.value)


def test_defaults_and_the_selector_as_a_rollouts() -> None:
    spec = ServerStopSpec.model_validate({"selector": {"all": True}, "reason": "  Upgrade.  "})
    assert spec.warn_before == 300 and spec.reason == "Upgrade."
    assert ServerStopSpec.model_validate({**SPEC, "warnBefore": "90s"}).warn_before == 90
    for bad in ({}, {"all": True, "groups": ["a"]}, {"drifted": False}):
        assert "exactly one of drifted: true, groups, users or all: true" in refusal({**SPEC, "selector": bad})


def test_refusals_name_the_problem() -> None:
    assert f"at most {MESSAGE_MAX} characters (got {MESSAGE_MAX + 1})" in refusal({**SPEC, "reason": "x" * 141})
    assert "must not be empty" in refusal({**SPEC, "reason": "   "})
    assert "one line" in refusal({**SPEC, "reason": "a\nb"})
    assert "bidirectional" in refusal({**SPEC, "reason": "a\u202eb"})
    assert "reason" in refusal({"selector": {"all": True}})  # required
    for duration in ("soon", "-5m", "1.5s"):
        assert "warnBefore" in refusal({**SPEC, "warnBefore": duration}), duration
    assert "Extra inputs are not permitted" in refusal({**SPEC, "maxUnavailable": 2})


def test_notice_says_why_and_when() -> None:
    at = datetime(2026, 12, 1, 17, 55, tzinfo=UTC)
    text = serverstop.notice("Host maintenance at 18:00.", 300, at)
    assert text.startswith("Your server will be stopped in about 5 min (at 17:55 UTC): Host maintenance at 18:00.")
    assert "(at 17:55 UTC): Upgrade. Save your work" in serverstop.notice("Upgrade", 300, at)
    assert [serverstop.in_words(s) for s in (3, 89, 120, 5400, 7200)] == ["3 s", "89 s", "2 min", "1.5 h", "2 h"]


# --- the controller ----------------------------------------------------------------------------


class FakeHub:
    """Servers that stop at once (or never, for `stuck`); every stop logged."""

    def __init__(self, users: dict[str, list[str]], stuck: set[str] = frozenset()):
        self.groups = users
        self.started = dict.fromkeys(users, BEFORE)
        self.running = set(users)
        self.stuck = set(stuck)
        self.log: list[str] = []

    async def get_user(self, name: str) -> dict[str, Any]:
        return {"name": name, "servers": {"": {"ready": True}} if name in self.running else {}}

    async def stop_server(self, user: str, server: str = "") -> None:
        self.log.append(f"stop {user}")
        if user not in self.stuck:
            self.running.discard(user)

    def active(self) -> list[dict[str, Any]]:
        return [
            {"name": u, "groups": g, "servers": {"": {"url": f"/user/{u}/", "started": self.started[u]}}}
            for u, g in sorted(self.groups.items())
            if u in self.running
        ]


def context(hub: FakeHub, sent: list[tuple[list[str], dict]]) -> Any:
    written: list[dict] = []
    events: list[tuple[str, str]] = []

    async def active_users(max_age: float = 2.0) -> list[dict[str, Any]]:
        return hub.active()

    async def observed(kind: str, name: str) -> dict[str, Any]:
        return {"servers": [{"user": u, "server": "", "drifted": True} for u in hub.groups]}

    async def progress(kind: str, name: str, status: Any) -> None:
        written.append(status.dump())

    async def event(kind: str, name: str, reason: str, message: str, **kwargs: Any) -> None:
        events.append((reason, message))

    async def server_tokens(platform: str) -> dict[tuple[str, str], str]:
        return {(u, ""): f"token-{u}" for u in hub.running}

    settings = SimpleNamespace(
        spawn_timeout=0.2, platform_id="p", proxy_url="http://proxy", broadcast_concurrency=5,
        broadcast_attempt_timeout=1, broadcast_deadline=5,
    )  # fmt: skip
    return SimpleNamespace(
        hub=hub, active_users=active_users, observed=observed, progress=progress, event=event,
        engine=SimpleNamespace(server_tokens=server_tokens), settings=settings, written=written, events=events,
    )  # fmt: skip


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict]]:
    """The notices, as (the users told, the body): every lab takes it."""
    calls: list[tuple[list[str], dict]] = []

    async def deliver_all(targets: list[lab.Target], body: dict, **kwargs: Any) -> list[lab.Result]:
        calls.append(([t.user for t in targets], body))
        return [lab.Result(t, "delivered") for t in targets]

    monkeypatch.setattr(lab, "deliver_all", deliver_all)
    return calls


def resource(spec: dict, status: dict | None = None) -> StoredResource:
    return StoredResource(
        kind="ServerStop", name="s", owner="cli", source=None, labels={}, spec=spec, generation=1,
        resource_version=1, created=CREATED, updated=CREATED, status=status or {},
    )  # fmt: skip


COURSE = {"ann": ["course"], "bob": ["course", "x"], "cat": ["x"]}


def test_stops_exactly_the_selected_and_completes(sent: list) -> None:
    hub = FakeHub(COURSE)
    ctx = context(hub, sent)
    result = asyncio.run(serverstop.reconcile(resource(SPEC), ctx))
    status = result.status
    assert sorted(hub.log) == ["stop ann", "stop bob"] and hub.running == {"cat"}
    assert sent == []  # warnBefore 0: no notice
    assert status.phase == "Completed" and (status.stopped, status.gone, status.failed) == (2, 0, 0)
    assert {t.user: t.state for t in status.targets} == {"ann": "Stopped", "bob": "Stopped"}
    assert [r for r, _ in ctx.events] == ["Started", "Stopped", "Stopped", "Completed"]
    assert status.is_true("Complete") and result.requeue_after is None


def test_stop_time_recorded_before_the_notice_then_a_requeue(sent: list) -> None:
    hub = FakeHub(COURSE)
    ctx = context(hub, sent)
    t0 = datetime.now(UTC)
    result = asyncio.run(serverstop.reconcile(resource({**SPEC, "warnBefore": "5m"}), ctx))
    status = result.status
    assert hub.log == [] and status.phase == "Warning"
    assert 290 < (result.requeue_after or 0) <= 300
    assert t0 + timedelta(seconds=299) < status.stop_at <= datetime.now(UTC) + timedelta(seconds=300)
    [(told, body)] = sent
    assert told == ["ann", "bob"] and body["type"] == "warning" and body["data"] == {"serverStop": "s"}
    assert "Host maintenance at 18:00." in body["message"] and f"{status.stop_at:%H:%M} UTC" in body["message"]
    recorded = [w for w in ctx.written if w.get("stopAt")]
    assert recorded[0].get("warnedAt") is None  # the stop time was written before the notice went
    assert {t.state for t in status.targets} == {"Warned"} and status.warned_at is not None


def test_a_resumed_wait_neither_warns_again_nor_stops_early(sent: list) -> None:
    """The reconciler restarted after writing the stop time (the notice's outcome unknown):
    it waits for the recorded time; once that has passed it stops."""
    hub = FakeHub(COURSE)
    ctx = context(hub, sent)
    stop_at = datetime.now(UTC) + timedelta(seconds=120)
    crashed = {
        "phase": "Warning",
        "chosenAt": CREATED.isoformat(),
        "stopAt": stop_at.isoformat(),
        "targets": [{"user": "ann", "serverStarted": BEFORE}, {"user": "bob", "serverStarted": BEFORE}],
    }
    result = asyncio.run(serverstop.reconcile(resource({**SPEC, "warnBefore": "5m"}, crashed), ctx))
    assert sent == [] and hub.log == [] and 100 < (result.requeue_after or 0) <= 120
    assert "may not have been sent" in result.status.targets[0].message
    passed = {**crashed, "stopAt": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
    result = asyncio.run(serverstop.reconcile(resource({**SPEC, "warnBefore": "5m"}, passed), ctx))
    assert sent == [] and sorted(hub.log) == ["stop ann", "stop bob"] and result.status.phase == "Completed"


def test_stopped_meanwhile_is_done_and_a_newer_server_is_left_alone(sent: list) -> None:
    hub = FakeHub(COURSE)
    ctx = context(hub, sent)
    result = asyncio.run(serverstop.reconcile(resource({**SPEC, "warnBefore": "5m"}), ctx))
    hub.running.discard("ann")  # ann stopped her server herself
    hub.started["bob"] = datetime.now(UTC).isoformat()  # bob stopped and started his again
    passed = result.status.dump() | {"stopAt": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
    result = asyncio.run(serverstop.reconcile(resource(SPEC, passed), ctx))
    assert hub.log == [] and hub.running == {"bob", "cat"}
    status = result.status
    assert status.phase == "Completed" and (status.stopped, status.gone) == (0, 2)
    assert "left alone" in status.targets[1].message and "left alone" not in status.targets[0].message


def test_a_server_started_after_creation_is_not_chosen(sent: list) -> None:
    hub = FakeHub(COURSE)
    hub.started["bob"] = datetime.now(UTC).isoformat()
    result = asyncio.run(serverstop.reconcile(resource(SPEC), context(hub, sent)))
    assert [t.user for t in result.status.targets] == ["ann"] and hub.log == ["stop ann"]


def test_nothing_selected_completes_at_once(sent: list) -> None:
    hub = FakeHub(COURSE)
    spec = {**SPEC, "selector": {"users": ["nobody"]}, "warnBefore": "5m"}
    result = asyncio.run(serverstop.reconcile(resource(spec), context(hub, sent)))
    assert result.status.phase == "Completed" and result.status.targets == [] and sent == []


def test_drifted_takes_the_surveys_running_servers(sent: list) -> None:
    hub = FakeHub(COURSE)
    hub.running.discard("cat")  # in the survey, not running
    result = asyncio.run(serverstop.reconcile(resource({**SPEC, "selector": {"drifted": True}}), context(hub, sent)))
    assert [t.user for t in result.status.targets] == ["ann", "bob"]


def test_a_server_that_does_not_stop_fails_the_attempt_then_is_retried(sent: list) -> None:
    hub = FakeHub(COURSE, stuck={"bob"})
    ctx = context(hub, sent)
    with pytest.raises(TemporaryError, match="1 of 2 servers did not stop"):
        asyncio.run(serverstop.reconcile(resource(SPEC), ctx))
    last = ServerStopStatus.load(ctx.written[-1])
    assert {t.user: t.state for t in last.targets} == {"ann": "Stopped", "bob": "Failed"} and last.failed == 1
    assert ("StopFailed", "bob's default server: the servers of bob did not stop within 0.2 s") in ctx.events
    hub.stuck.clear()
    hub.log.clear()
    result = asyncio.run(serverstop.reconcile(resource(SPEC, ctx.written[-1]), ctx))
    assert hub.log == ["stop bob"]  # ann is not asked again
    assert result.status.phase == "Completed" and (result.status.stopped, result.status.failed) == (2, 0)
