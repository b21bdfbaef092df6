"""Backups without an engine: retention over a fake clock, the specs' rules, the settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from reconciler import retention
from reconciler.api import parse_resource
from reconciler.api.backupschedule import BackupScheduleSpec
from reconciler.api.volumebackup import VolumeBackupSpec
from reconciler.api.volumerestore import VolumeRestoreSpec
from reconciler.clients import backups
from vocabulary.settings import SettingsError, load_settings

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # a Tuesday


def hourly(count: int, start: datetime = T0, step: timedelta = timedelta(hours=6)) -> list[tuple[str, datetime]]:
    return [(f"b{i:03d}", start + i * step) for i in range(count)]


def test_keep_last_keeps_the_newest() -> None:
    backups = hourly(10)
    assert retention.keep(backups, keep_last=3) == {"b009", "b008", "b007"}
    assert retention.keep(backups, keep_last=0, keep_daily=1) == {"b009"}
    assert retention.keep(backups[:2], keep_last=5) == {"b000", "b001"}


def test_keep_daily_keeps_the_newest_of_each_day() -> None:
    backups = hourly(12)  # 4 a day (02, 08, 14, 20 h) over 3 days
    assert retention.keep(backups, keep_daily=2) == {"b011", "b007"}
    assert retention.keep(backups, keep_daily=5) == {"b011", "b007", "b003"}


def test_keep_weekly_counts_iso_weeks() -> None:
    backups = hourly(21, step=timedelta(days=1))  # dailies from Tue 1 Dec to Mon 21 Dec 2026
    assert backups[19][1].isoweekday() == 7 and backups[20][1].isoweekday() == 1
    # Weeks' newest: Mon 21 (b020, alone in its week), Sun 20 (b019), Sun 13 (b012), Sun 6 (b005).
    assert retention.keep(backups, keep_weekly=2) == {"b020", "b019"}
    assert retention.keep(backups, keep_weekly=9) == {"b020", "b019", "b012", "b005"}


def test_rules_add_up_and_order_does_not_matter() -> None:
    backups = hourly(12)
    both = retention.keep(list(reversed(backups)), keep_last=2, keep_daily=3)
    assert both == {"b011", "b010", "b007", "b003"}


def test_plan_prunes_only_after_a_success() -> None:
    failed = [("f1", T0)]
    assert retention.plan([], failed, 1, 0, 0) == retention.Plan(keep=[], delete=[])
    succeeded = hourly(4, start=T0 + timedelta(minutes=1))
    plan = retention.plan(succeeded, [*failed, ("f2", T0 + timedelta(days=9))], 2, 0, 0)
    assert plan.keep == ["b003", "b002"]
    assert plan.delete == ["b001", "b000", "f1"]  # f2 is newer than every success: kept


def test_a_schedule_run_with_a_fake_clock_keeps_exactly_keep_last() -> None:
    """Every run: a new success, then prune: never more than keepLast, always the newest."""
    alive: list[tuple[str, datetime]] = []
    for i, (name, t) in enumerate(hourly(9)):
        alive.append((name, t))
        plan = retention.plan(alive, [], 3, 0, 0)
        alive = [b for b in alive if b[0] not in plan.delete]
        assert [n for n, _ in sorted(alive, key=lambda b: b[1], reverse=True)] == plan.keep
        assert len(alive) == min(i + 1, 3)
    assert {n for n, _ in alive} == {"b008", "b007", "b006"}


def test_backup_spec_needs_exactly_one_subject() -> None:
    assert VolumeBackupSpec.model_validate({"user": "bk-a"}).volumes == ["home", "workspace"]
    assert VolumeBackupSpec.model_validate({"selector": {"groups": ["g"]}}).selector is not None
    assert VolumeBackupSpec.model_validate({"allUsers": True}).all_users
    for bad in ({}, {"user": "a", "allUsers": True}, {"user": "a", "selector": {"users": ["b"]}}):
        with pytest.raises(ValidationError, match="exactly one of"):
            VolumeBackupSpec.model_validate(bad)
    with pytest.raises(ValidationError, match="duplicates"):
        VolumeBackupSpec.model_validate({"user": "a", "volumes": ["home", "home"]})


def test_backups_are_kept_forever_by_default() -> None:
    doc = {"apiVersion": "jupyterhub-ds/v1", "kind": "VolumeBackup", "metadata": {"name": "a-1"}}
    backup = parse_resource(doc | {"spec": {"user": "a"}})
    assert backup.spec.ttl_seconds_after_finished == 0
    restore = parse_resource(doc | {"kind": "VolumeRestore", "spec": {"backup": "a-1", "user": "a"}})
    assert restore.spec.ttl_seconds_after_finished == 7 * 24 * 3600
    assert VolumeRestoreSpec.model_validate({"backup": "a-1", "user": "b", "sourceUser": "a"}).source_user == "a"


def test_schedule_spec() -> None:
    spec = BackupScheduleSpec.model_validate({"schedule": "0  3 * * *", "retention": {"keepDaily": 7}})
    assert spec.schedule == "0 3 * * *" and spec.retention.keep_daily == 7
    with pytest.raises(ValidationError, match="must keep something"):
        BackupScheduleSpec.model_validate({"schedule": "0 3 * * *", "retention": {"keepLast": 0}})
    with pytest.raises(ValidationError, match="cron"):
        BackupScheduleSpec.model_validate({"schedule": "every day"})


def test_backup_settings() -> None:
    s = load_settings({})
    assert (s.backup_location, s.backup_concurrency) == ("", 2)
    assert load_settings({"BACKUP_LOCATION": "volume:bk"}).backup_location == "volume:bk"
    assert load_settings({"BACKUP_LOCATION": "/srv/backups"}).backup_location == "/srv/backups"
    for bad in ("relative/dir", "volume:", "volume:a b"):
        with pytest.raises(SettingsError, match="BACKUP_LOCATION"):
            load_settings({"BACKUP_LOCATION": bad})
    with pytest.raises(SettingsError, match="BACKUP_CONCURRENCY"):
        load_settings({"BACKUP_CONCURRENCY": "0"})


def test_at_most_backup_concurrency_helpers_copy_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeEngine:
        async def ensure_volume(self, name: str, labels: dict[str, str]) -> bool:
            return False

    running, peak = 0, 0

    async def fake_run(
        self: backups.Helpers, what: str, op: str, args: dict, mounts: dict, mode: str, user: str | None = None
    ) -> dict:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return {"archives": []}

    monkeypatch.setattr(backups.Helpers, "_run", fake_run)
    helpers = backups.Helpers(FakeEngine(), load_settings({"BACKUP_CONCURRENCY": "3"}))  # type: ignore[arg-type]

    async def many() -> None:
        users = [f"u{i}" for i in range(10)]
        await asyncio.gather(*(helpers.backup("b", u, {"home": f"v-{u}"}) for u in users))
        await asyncio.gather(*(helpers.restore(f"r{i}", [], {"home": "v"}) for i in range(5)))

    asyncio.run(many())
    assert peak == 3


def test_a_restore_takes_another_users_archives_only_when_named() -> None:
    own = VolumeRestoreSpec.model_validate({"backup": "b", "user": "alice"})
    assert own.source == "alice" and not own.cross_user  # never the backup's one other user
    cross = VolumeRestoreSpec.model_validate({"backup": "b", "user": "alice", "sourceUser": "bob"})
    assert cross.source == "bob" and cross.cross_user
    same = VolumeRestoreSpec.model_validate({"backup": "b", "user": "alice", "sourceUser": "alice"})
    assert not same.cross_user


def test_backups_and_restores_have_a_deadline_by_default() -> None:
    hours = 6 * 3600
    assert VolumeBackupSpec.model_validate({"user": "a"}).active_deadline_seconds == hours
    assert VolumeRestoreSpec.model_validate({"backup": "b", "user": "a"}).active_deadline_seconds == hours
    with pytest.raises(ValidationError):
        VolumeBackupSpec.model_validate({"user": "a", "activeDeadlineSeconds": 0})


def test_a_helper_past_its_deadline_is_never_started() -> None:
    settings = load_settings({"PLATFORM_ID": "unit"})
    past = backups.Job("VolumeBackup", "b", datetime.now(UTC) - timedelta(seconds=1))

    class NoEngine:
        async def ensure_volume(self, *_a: object) -> bool:
            return False

        async def run_helper(self, *_a: object) -> tuple[int, str]:
            raise AssertionError("started")

    with pytest.raises(backups.HelperDeadline):
        asyncio.run(backups.Helpers(NoEngine(), settings, past).backup("b", "u", {"home": "v"}))  # type: ignore[arg-type]


def test_one_user_slot_at_a_time() -> None:
    async def main() -> list[str]:
        seen: list[str] = []

        async def work(tag: str) -> None:
            async with backups.user_slot("alice"):
                seen.append(f"{tag}+")
                await asyncio.sleep(0.01)
                seen.append(f"{tag}-")

        await asyncio.gather(work("a"), work("b"))
        return seen

    assert asyncio.run(main()) == ["a+", "a-", "b+", "b-"]


def test_a_newcomer_never_passes_a_waiter_for_a_user_slot() -> None:
    async def main() -> int:
        inside, most = 0, 0

        async def work() -> None:
            nonlocal inside, most
            async with backups.user_slot("bob"):
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.01)
                inside -= 1

        first = [asyncio.create_task(work()) for _ in range(2)]
        await asyncio.sleep(0.015)  # the first is done, the second about to take the slot
        await asyncio.gather(*first, work(), work())
        return most

    assert asyncio.run(main()) == 1
