"""Bounds of backups (issue 22) on the real engine and hub: another user's archives only by a
hub admin, set-id bits dropped on restore, sparse files kept sparse, helpers killed at the
deadline and stopped with their request, one helper per user, a user's own backups limited
and expiring, sizes and lists from surveys.

The platform of test_backups.py (the same settings: started once for both).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from tests.harness import Hub, wait_for
from tests.helpers import apply, condition, events, finished, manifest, resource
from tests.integration.backup_volumes import (
    BACKUP_ENV,
    HELPER,
    IMAGE,
    REQUEST,
    create,
    fill,
    helpers,
    in_volume,
    location,
)  # fmt: skip
from vocabulary import naming

USERS = ("bk-fay", "bk-gus", "bk-hal", "bk-ivy", "bk-jo", "bk-kim")
# Incompressible data gzip needs many seconds for on this 2-CPU host: a helper that is
# still running when the test looks (deadline, deletion, one per user).
SLOW = "head -c 300M /dev/urandom > /v/random.bin\n"
# 2 GB apparent, a few KB on disk (one block of data in the middle).
SPARSE = "truncate -s 2G /v/sparse.img && printf data | dd of=/v/sparse.img bs=1 seek=1000000000 conv=notrunc\n"


@pytest.fixture(scope="module")
def bhub(own_platforms) -> Hub:
    return own_platforms.platform("backup", BACKUP_ENV, USERS)


def test_another_users_backup_is_restored_by_hub_admins_only_and_without_set_id_bits(bhub: Hub) -> None:
    """Issue 22 item 2: an operator restores a user's own backup only; another user's
    archives need a hub admin (`sourceUser`, never implied); restored files lose setuid and
    setgid (a folder keeps its setgid)."""
    engine = docker.from_env()
    set_id = "cp /bin/true /v/suid && chmod 4755 /v/suid && cp /bin/true /v/sgid && chmod 2755 /v/sgid\n"
    fill(engine, bhub, "bk-fay", "home", set_id)
    apply(bhub, "VolumeBackup", "bk-fay-1", {"user": "bk-fay", "volumes": ["home"]})
    assert finished(bhub, "VolumeBackup", "bk-fay-1")["phase"] == "Succeeded"
    admin = bhub.login("admin")[0]
    assert admin is not None
    op = bhub.approved_user(admin, "bk-op")
    bhub.api("POST", "groups/platform-operators/users", json={"users": ["bk-op"]})

    def restore(session, name: str, spec: dict):  # type: ignore[no-untyped-def]
        return bhub.as_user(session, "POST", "manifests", data=manifest("VolumeRestore", name, spec))

    try:
        cross = {"backup": "bk-fay-1", "user": "bk-gus", "sourceUser": "bk-fay"}
        r = restore(op, "bk-op-cross", cross)
        assert r.status_code == 403 and "hub admins" in r.json()["message"], r.text
        # Without sourceUser the backup's one user is not implied: nothing of bk-fay's reaches bk-gus.
        r = restore(op, "bk-op-implied", {"backup": "bk-fay-1", "user": "bk-gus"})
        assert r.status_code == 200, r.text
        status = finished(bhub, "VolumeRestore", "bk-op-implied")
        assert status["phase"] == "Failed" and condition(status)["reason"] == "NotInBackup", status
        assert not engine.volumes.list(filters={"name": bhub.volume_name("bk-gus", "home")})
        # The user's own backup: the operator may.
        in_volume(engine, bhub.volume_name("bk-fay", "home"), "rm -rf /v/projects")
        r = restore(op, "bk-op-own", {"backup": "bk-fay-1", "user": "bk-fay"})
        assert r.status_code == 200, r.text
        assert finished(bhub, "VolumeRestore", "bk-op-own")["phase"] == "Succeeded"
    finally:
        bhub.api("DELETE", "groups/platform-operators/users", json={"users": ["bk-op"]})
    apply(bhub, "VolumeRestore", "bk-admin-cross", cross)  # the automation token holds admin:users
    assert finished(bhub, "VolumeRestore", "bk-admin-cross")["phase"] == "Succeeded"
    for user in ("bk-fay", "bk-gus"):
        modes = in_volume(engine, bhub.volume_name(user, "home"), "stat -c '%n %A' /v/suid /v/sgid /v/projects")
        assert modes.split("\n")[:3] == ["/v/suid -rwxr-xr-x", "/v/sgid -rwxr-xr-x", "/v/projects drwxrwsr-x"], modes
        assert in_volume(engine, bhub.volume_name(user, "home"), "find /v ! -type d -perm /6000") == ""


@pytest.fixture(scope="module")
def slow(bhub: Hub) -> str:
    """bk-hal's cache volume, holding what takes a helper many seconds to archive (once)."""
    return create(docker.from_env(), bhub, "bk-hal", "cache", SLOW)


def test_sparse_files_stay_sparse_and_a_helper_past_its_deadline_is_killed(bhub: Hub, slow: str) -> None:
    """Issue 22 item 5: a 2 GB sparse file is archived and restored as holes; a helper
    still at work at `activeDeadlineSeconds` is killed, the backup `Failed`,
    DeadlineExceeded, nothing of it left; backups and restores have a default deadline."""
    engine = docker.from_env()
    create(engine, bhub, "bk-hal", "home", SPARSE)
    t0 = time.monotonic()
    apply(bhub, "VolumeBackup", "bk-hal-sparse", {"user": "bk-hal", "volumes": ["home"]})
    status = finished(bhub, "VolumeBackup", "bk-hal-sparse")
    print(f"backup of a 2 GB sparse file: {time.monotonic() - t0:.2f} s, {status['bytes']} bytes")
    assert status["phase"] == "Succeeded" and status["bytes"] < 100_000, status
    spec = resource(bhub, "VolumeBackup", "bk-hal-sparse")["spec"]
    assert spec["activeDeadlineSeconds"] == 6 * 3600  # the default
    in_volume(engine, bhub.volume_name("bk-hal", "home"), "rm /v/sparse.img")
    apply(bhub, "VolumeRestore", "bk-hal-sparse-back", {"backup": "bk-hal-sparse", "user": "bk-hal"})
    assert finished(bhub, "VolumeRestore", "bk-hal-sparse-back")["phase"] == "Succeeded"
    sizes = in_volume(engine, bhub.volume_name("bk-hal", "home"), "stat -c '%s %b %B' /v/sparse.img").split()
    assert int(sizes[0]) == 2 << 30 and int(sizes[1]) * int(sizes[2]) < 1 << 20, sizes  # 2 GB, < 1 MB on disk

    t0 = time.monotonic()
    apply(bhub, "VolumeBackup", "bk-hal-late", {"user": "bk-hal", "volumes": ["cache"], "activeDeadlineSeconds": 5})
    status = finished(bhub, "VolumeBackup", "bk-hal-late", timeout=60)
    took = time.monotonic() - t0
    print(f"backup past its 5 s deadline ended after {took:.1f} s")
    assert status["phase"] == "Failed" and condition(status)["reason"] == "DeadlineExceeded", status
    assert "killed at the deadline" in status["users"][0]["message"], status
    assert took < 20, took
    assert helpers(engine, bhub, "bk-hal") == []
    assert in_volume(engine, location(bhub), "ls -A /v/bk-hal-late 2>/dev/null; echo") == "\n"  # no .part, no archive


def test_a_deleted_backup_stops_its_helper_and_a_user_runs_one_helper_at_a_time(bhub: Hub, slow: str) -> None:
    """Issue 22 item 5: deleting a VolumeBackup stops its helper at once (what it wrote is
    removed); cancelling and recreating a reset with a backup first never runs two helpers
    for one user (the cancelled reset's backup is stopped)."""
    engine = docker.from_env()
    apply(bhub, "VolumeBackup", "bk-hal-gone", {"user": "bk-hal", "volumes": ["cache"]})
    wait_for(lambda: helpers(engine, bhub, "bk-hal"), 30, "the helper running")
    t0 = time.monotonic()
    assert bhub.api("DELETE", "resources/volumebackup/bk-hal-gone").status_code == 204
    wait_for(lambda: not helpers(engine, bhub, "bk-hal"), 15, "the helper stopped", interval=0.2)
    print(f"helper stopped {time.monotonic() - t0:.1f} s after its backup was deleted")
    assert time.monotonic() - t0 < 8
    assert in_volume(engine, location(bhub), "ls -A /v/bk-hal-gone 2>/dev/null; echo") == "\n"

    most, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            most[0] = max(most[0], len(helpers(engine, bhub, "bk-hal")))
            time.sleep(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        backups = []
        for _ in range(3):  # request, wait until its helper works, cancel; again
            r = bhub.api("POST", "users/bk-hal/volume-resets", json={"volumes": ["cache"], "backupFirst": True})
            assert r.status_code == 202, r.text
            name = r.json()["name"]
            backups.append(f"{name}-bk")
            wait_for(lambda name=name: helpers(engine, bhub, "bk-hal", f"{name}-bk"), 30, "the backup first running")
            assert bhub.api("DELETE", f"users/bk-hal/volume-resets/{name}").status_code == 204
        wait_for(lambda: not helpers(engine, bhub, "bk-hal"), 20, "every helper stopped", interval=0.2)
    finally:
        stop.set()
        watcher.join()
    assert most[0] == 1, f"{most[0]} helpers of one user at once"
    for backup in backups:
        status = finished(bhub, "VolumeBackup", backup)
        assert status["phase"] == "Failed" and "cancelled" in status["users"][0]["message"], status
    assert engine.volumes.list(filters={"name": slow})  # nothing was reset


def test_a_helper_whose_request_is_gone_is_stopped_at_the_next_resync(bhub: Hub) -> None:
    """Issue 22 item 5: a helper left working for a request deleted while the reconciler
    was down (here: one started by hand with a helper's labels) is stopped and removed."""
    engine = docker.from_env()
    labels = {naming.LABEL_PLATFORM: bhub.platform, HELPER: "backup", REQUEST: "VolumeBackup.bk-ghost"}
    name = naming.task_name(bhub.platform, "backup", "bk-hal", "bk-ghost")  # as the platform names helpers
    engine.containers.run(IMAGE, ["sleep", "300"], name=name, labels=labels, network_mode="none", detach=True)
    t0 = time.monotonic()
    wait_for(lambda: not helpers(engine, bhub, "bk-hal", "bk-ghost"), 50, "the orphan stopped", interval=0.5)
    print(f"orphaned helper removed after {time.monotonic() - t0:.1f} s (resync every 30 s)")
    reasons = [e["reason"] for e in events(bhub) if e["kind"] == "BackupHelpers"]
    assert "OrphanStopped" in reasons, reasons


def test_a_users_own_backups_are_limited_and_expire_with_their_archives(bhub: Hub) -> None:
    """Issue 22 item 5: backups taken before a user's resets count against BACKUP_USER_MAX
    (1 here): the newer one that succeeded removes the older, archives first; they expire by
    default (BACKUP_USER_TTL_SECONDS), and a backup deleted by its TTL takes its archives."""
    engine = docker.from_env()
    taken = []
    for _ in range(2):
        fill(engine, bhub, "bk-ivy", "cache")
        r = bhub.api("POST", "users/bk-ivy/volume-resets", json={"volumes": ["cache"], "backupFirst": True})
        assert r.status_code == 202, r.text
        assert finished(bhub, "VolumeReset", r.json()["name"])["phase"] == "Succeeded"
        taken.append(f"{r.json()['name']}-bk")
    newest = resource(bhub, "VolumeBackup", taken[1])
    assert newest["spec"]["ttlSecondsAfterFinished"] == 14 * 24 * 3600, newest["spec"]
    wait_for(lambda: resource(bhub, "VolumeBackup", taken[0]) is None, 20, "the older pruned")
    folders = in_volume(engine, location(bhub), "ls /v").split()
    assert taken[1] in folders and taken[0] not in folders

    fill(engine, bhub, "bk-jo", "home")
    apply(bhub, "VolumeBackup", "bk-jo-ttl", {"user": "bk-jo", "volumes": ["home"], "ttlSecondsAfterFinished": 2})
    assert finished(bhub, "VolumeBackup", "bk-jo-ttl")["phase"] == "Succeeded"
    wait_for(lambda: resource(bhub, "VolumeBackup", "bk-jo-ttl") is None, 30, "expired")
    assert "bk-jo-ttl" not in in_volume(engine, location(bhub), "ls /v").split()


def test_sizes_and_backup_lists_come_from_surveys(bhub: Hub) -> None:
    """Issue 22 item 9: Manage Volumes' sizes come from one survey of the engine, shared by
    concurrent requests and said how old; a user's backup list from an index rebuilt only
    when the backups change."""
    engine = docker.from_env()
    for key in ("home", "workspace"):
        fill(engine, bhub, "bk-kim", key)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: bhub.api("GET", "users/bk-kim/manage-volumes").json(), range(8)))
    assert {a["sizesAt"] for a in answers} == {answers[0]["sizesAt"]}, answers  # one survey served all
    again = bhub.api("GET", "users/bk-kim/manage-volumes").json()
    assert again["sizesAt"] == answers[0]["sizesAt"] and again["sizesAge"] >= 0
    assert {v["key"] for v in again["volumes"]} == {"home", "workspace"}
    assert all(isinstance(v["size"], int) and v["size"] > 200_000 for v in again["volumes"]), again

    first = bhub.api("GET", "users/bk-kim/backups").json()
    second = bhub.api("GET", "users/bk-kim/backups").json()
    assert second["indexedAt"] == first["indexedAt"] and second["items"] == first["items"] == []
    apply(bhub, "VolumeBackup", "bk-kim-1", {"user": "bk-kim", "volumes": ["home"]})
    assert finished(bhub, "VolumeBackup", "bk-kim-1")["phase"] == "Succeeded"
    third = bhub.api("GET", "users/bk-kim/backups").json()
    assert third["indexedAt"] > first["indexedAt"] and [b["name"] for b in third["items"]] == ["bk-kim-1"], third
