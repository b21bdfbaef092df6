"""The BackupSchedule controller over a run of firings with a fake clock, on a real SQLite
store: each firing records one VolumeBackup, each finished run its users' outcomes, and
retention prunes exactly what it says, only after a success (archives first)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.clients.hub import HubClient
from reconciler.context import Context
from reconciler.controllers import backupschedule
from reconciler.manifests import parse_manifests
from reconciler.store import Store
from vocabulary.settings import load_settings

DOC = """apiVersion: jupyterhub-ds/v1
kind: BackupSchedule
metadata: {name: nightly}
spec: {schedule: "0 3 * * *", selector: {users: [ann, bob]}, retention: {keepLast: 2, keepWeekly: 2}}
"""
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # a Tuesday


class FakeSchedules:
    """The calendar, by hand: `fire` is what APScheduler would do at a firing."""

    def __init__(self) -> None:
        self.due: datetime | None = None

    def fire(self, when: datetime) -> None:
        self.due = when

    def take_due(self, key: tuple[str, str]) -> datetime | None:
        due, self.due = self.due, None
        return due

    def take_missed(self, key: tuple[str, str]) -> datetime | None:
        return None

    def ensure(self, key: tuple[str, str], **kwargs: Any) -> datetime:
        return kwargs["after"] + timedelta(days=1)


class FakeHelpers:
    deleted: list[str] = []

    def __init__(self, engine: Any, settings: Any) -> None:
        pass

    async def delete(self, backups: list[str]) -> dict:
        FakeHelpers.deleted += backups
        return {"removed": backups}


def finish_backup(store: Store, name: str, when: datetime, outcomes: dict[str, str]) -> None:
    """What the VolumeBackup controller would write when done."""
    users = [{"user": u, "outcome": o, "message": "disk full" if o == "Failed" else ""} for u, o in outcomes.items()]
    phase = "Failed" if "Failed" in outcomes.values() else "Succeeded"
    store.write_status("VolumeBackup", name, {"phase": phase, "startedAt": when.isoformat(), "users": users})


@pytest.fixture
def world(tmp_path, monkeypatch) -> tuple[Store, Context, FakeSchedules]:
    monkeypatch.setattr(backupschedule, "Helpers", FakeHelpers)
    FakeHelpers.deleted = []
    store = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    store.apply(parse_manifests(DOC, "s.yaml"), "cli")
    ctx = Context(store=store, hub=HubClient("http://127.0.0.1:9", "unused"), settings=load_settings({}))
    schedules = FakeSchedules()
    ctx.schedules = schedules  # type: ignore[assignment]
    return store, ctx, schedules


def reconcile(store: Store, ctx: Context) -> dict:
    result = asyncio.run(backupschedule.reconcile(store.get("BackupSchedule", "nightly"), ctx))
    body = result.status.dump()
    store.write_status("BackupSchedule", "nightly", body)
    return body


def backups(store: Store) -> list[str]:
    return sorted(b.name for b in store.list("VolumeBackup"))


def test_a_run_of_firings_keeps_exactly_the_retention(world) -> None:
    store, ctx, schedules = world
    outcomes = {"ann": "Succeeded", "bob": "Succeeded"}
    for day in range(10):
        when = T0 + timedelta(days=day)
        schedules.fire(when)
        status = reconcile(store, ctx)
        name = f"nightly-{when:%Y%m%d-%H%M%S}"
        assert status["currentRun"]["backup"] == name
        spec = store.get("VolumeBackup", name).spec
        assert spec["selector"] == {"users": ["ann", "bob"], "groups": []} and spec["ttlSecondsAfterFinished"] == 0
        assert reconcile(store, ctx)["currentRun"]["backup"] == name  # not finished: followed
        finish_backup(store, name, when, outcomes)
        status = reconcile(store, ctx)
        assert status.get("currentRun") is None
        assert status["runs"][0] == {"backup": name, "scheduledFor": f"{when:%Y-%m-%dT%H:%M:%SZ}", "phase": "Succeeded",
                                     "users": outcomes}  # fmt: skip
    # keepLast 2: Dec 10 and 9; keepWeekly 2: the newest of the week of Dec 7 (Dec 10) and of
    # the week of Nov 30 (Sun Dec 6).
    kept = ["nightly-20261206-030000", "nightly-20261209-030000", "nightly-20261210-030000"]
    assert backups(store) == kept
    assert sorted(status["kept"]) == kept
    assert sorted(FakeHelpers.deleted) == [f"nightly-202612{d:02d}-030000" for d in (1, 2, 3, 4, 5, 7, 8)]


def test_a_failed_run_prunes_nothing_and_is_pruned_after_a_success(world) -> None:
    store, ctx, schedules = world
    days = {0: "Succeeded", 1: "Succeeded", 2: "Failed", 3: "Failed"}
    for day, outcome in days.items():
        when = T0 + timedelta(days=day)
        schedules.fire(when)
        reconcile(store, ctx)
        finish_backup(store, f"nightly-{when:%Y%m%d-%H%M%S}", when, {"ann": "Succeeded", "bob": outcome})
        status = reconcile(store, ctx)
    assert status["runs"][0]["users"] == {"ann": "Succeeded", "bob": "Failed: disk full"}
    assert len(backups(store)) == 4 and FakeHelpers.deleted == []  # the failures pruned nothing
    when = T0 + timedelta(days=4)
    schedules.fire(when)
    reconcile(store, ctx)
    finish_backup(store, f"nightly-{when:%Y%m%d-%H%M%S}", when, {"ann": "Succeeded", "bob": "Succeeded"})
    reconcile(store, ctx)
    # keepLast 2 and keepWeekly 2 (Dec 5, and nothing older than that week): Dec 5 and 2 kept;
    # the failures of Dec 3 and 4, older than the newest success, are gone.
    assert backups(store) == ["nightly-20261202-030000", "nightly-20261205-030000"]


def test_a_firing_is_taken_once(world) -> None:
    store, ctx, schedules = world
    schedules.fire(T0)
    reconcile(store, ctx)
    schedules.fire(T0)  # the same firing again (e.g. a restart found it): no second backup
    finish_backup(store, "nightly-20261201-030000", T0, {"ann": "Succeeded"})
    reconcile(store, ctx)
    reconcile(store, ctx)
    assert backups(store) == ["nightly-20261201-030000"]
