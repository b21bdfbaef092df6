"""Backups on the real engine and hub: a tree of every kind of file survives backup, reset
and restore; a corrupt archive is refused with the volume untouched; users see and restore
only their own backups; a schedule keeps exactly what its retention says. (The bounds of
issue 22 are in test_backups_bounds.py, on the same platform.)

One platform of its own, shared with test_backups_bounds.py (backup location: its own named
volume, labelled, removed after); volumes filled as `backup_volumes` says.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.harness import Hub, wait_for
from tests.helpers import apply, events, finished, resource, status
from tests.integration.backup_volumes import BACKUP_ENV, fill, in_volume, location, tree
from tests.integration.browser import chromium, shot, sign_in, wait
from vocabulary import naming

USERS = ("bk-ann", "bk-bob", "bk-cid", "bk-dan", "bk-eve")


@pytest.fixture(scope="module")
def bhub(own_platforms) -> Hub:
    return own_platforms.platform("backup", BACKUP_ENV, USERS)


def test_round_trip_backup_reset_restore(bhub: Hub) -> None:
    engine = docker.from_env()
    for key in ("home", "workspace"):
        fill(engine, bhub, "bk-ann", key)
    before = {key: tree(engine, bhub.volume_name("bk-ann", key)) for key in ("home", "workspace")}
    assert any("user.origin" in line for line in before["home"]), "xattrs are not supported here"

    t0 = time.monotonic()
    apply(bhub, "VolumeBackup", "bk-ann-1", {"user": "bk-ann", "volumes": ["home", "workspace"]})
    status = finished(bhub, "VolumeBackup", "bk-ann-1")
    print(f"backup of 2 volumes: {time.monotonic() - t0:.2f} s")
    assert status["phase"] == "Succeeded", status
    archives = {a["volume"]: a for a in status["archives"]}
    assert set(archives) == {"home", "workspace"}
    for a in archives.values():  # 14 entries: the root, 5 folders, 4 files, 1 hard link, 3 symlinks
        assert len(a["sha256"]) == 64 and a["bytes"] > 200_000 and a["files"] == len(before["home"]) == 14, a
    manifest = json.loads(in_volume(engine, location(bhub), "cat /v/bk-ann-1/bk-2dann/manifest.json; echo"))
    assert {a["sha256"] for a in manifest["archives"]} == {a["sha256"] for a in archives.values()}
    assert manifest["user"] == "bk-ann" and manifest["startedAt"] <= manifest["finishedAt"]

    apply(bhub, "VolumeReset", "bk-ann-reset", {"user": "bk-ann", "volumes": ["home", "workspace"]})
    assert finished(bhub, "VolumeReset", "bk-ann-reset")["phase"] == "Succeeded"
    assert not engine.volumes.list(filters={"name": bhub.volume_name("bk-ann", "home")})

    t0 = time.monotonic()
    apply(bhub, "VolumeRestore", "bk-ann-restore", {"backup": "bk-ann-1", "user": "bk-ann"})
    status = finished(bhub, "VolumeRestore", "bk-ann-restore")
    print(f"restore of 2 volumes: {time.monotonic() - t0:.2f} s")
    assert status["phase"] == "Succeeded", status
    assert sorted(status["restoredVolumes"]) == ["home", "workspace"]
    after = {key: tree(engine, bhub.volume_name("bk-ann", key)) for key in ("home", "workspace")}
    assert after == before
    labels = engine.volumes.get(bhub.volume_name("bk-ann", "home")).attrs["Labels"]
    assert labels[naming.LABEL_USER] == "bk-ann"  # recreated as the spawner would


def test_corrupt_archive_is_refused_and_the_volume_untouched(bhub: Hub) -> None:
    engine = docker.from_env()
    fill(engine, bhub, "bk-bob", "home")
    apply(bhub, "VolumeBackup", "bk-bob-1", {"user": "bk-bob", "volumes": ["home"]})
    assert finished(bhub, "VolumeBackup", "bk-bob-1")["phase"] == "Succeeded"
    in_volume(engine, bhub.volume_name("bk-bob", "home"), "echo 'written after the backup' > /v/newer.txt")
    before = tree(engine, bhub.volume_name("bk-bob", "home"))
    # One byte flipped in the middle of the archive.
    flip = (
        "f=/v/bk-bob-1/bk-2dbob/home.tar.gz; printf 'X' | dd of=$f bs=1 seek=$(( $(stat -c %s $f) / 2 )) conv=notrunc"
    )
    in_volume(engine, location(bhub), flip)

    apply(bhub, "VolumeRestore", "bk-bob-restore", {"backup": "bk-bob-1", "user": "bk-bob"})
    status = finished(bhub, "VolumeRestore", "bk-bob-restore")
    assert status["phase"] == "Failed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ArchiveCorrupt"
    assert "is corrupt: sha256" in ready["message"] and "untouched" in ready["message"]
    assert tree(engine, bhub.volume_name("bk-bob", "home")) == before


def test_users_see_and_restore_only_their_own_backups(bhub: Hub) -> None:
    engine = docker.from_env()
    fill(engine, bhub, "bk-cid", "workspace")
    apply(bhub, "VolumeBackup", "bk-cid-1", {"user": "bk-cid", "volumes": ["workspace"]})
    assert finished(bhub, "VolumeBackup", "bk-cid-1")["phase"] == "Succeeded"
    admin = bhub.login("admin")[0]
    assert admin is not None
    cid = bhub.approved_user(admin, "bk-cid-web")
    r = bhub.as_user(cid, "GET", "users/bk-cid-web/backups")
    assert r.status_code == 200 and r.json()["items"] == []
    # The operators' page lists every backup; a user may not see it.
    page = admin.get(f"{bhub.url}hub/backups", timeout=30)
    assert page.status_code == 200 and 'data-backup="bk-cid-1"' in page.text
    assert cid.get(f"{bhub.url}hub/backups", timeout=30).status_code == 403
    # Another user's list and restore: refused by the scope.
    assert bhub.as_user(cid, "GET", "users/bk-cid/backups").status_code == 403
    assert bhub.as_user(cid, "POST", "users/bk-cid/backups/bk-cid-1/restore", json={}).status_code == 403
    # Another user's backup through one's own name: no such backup of this user.
    assert bhub.as_user(cid, "POST", "users/bk-cid-web/backups/bk-cid-1/restore", json={}).status_code == 404
    # The owner (here through the admin's token, as the user's own API would) sees it and restores it.
    listed = bhub.api("GET", "users/bk-cid/backups").json()["items"]
    assert [b["name"] for b in listed] == ["bk-cid-1"] and listed[0]["volumes"][0]["volume"] == "workspace"
    in_volume(engine, bhub.volume_name("bk-cid", "workspace"), "rm -rf /v/projects")
    r = bhub.api("POST", "users/bk-cid/backups/bk-cid-1/restore", json={"volumes": ["workspace"]})
    assert r.status_code == 202, r.text
    rname = r.json()["name"]
    follow = wait_for(
        lambda: (b := bhub.api("GET", f"users/bk-cid/volume-restores/{rname}").json())["finished"] and b,
        60,
        "the restore",
    )
    assert follow["phase"] == "Succeeded", follow
    assert "projects/a.txt" in "\n".join(tree(engine, bhub.volume_name("bk-cid", "workspace")))


def test_running_server_restore_refused_consistent_backup_restarts_it(bhub: Hub) -> None:
    """A restore is refused while the server runs; a consistent backup stops the server,
    backs up what the lab wrote, and starts it again."""
    engine = docker.from_env()
    bhub.start_server("bk-dan")
    bhub.exec(engine, "bk-dan", "echo 'from the lab' > /home/lab/workspace/lab.txt")
    apply(bhub, "VolumeBackup", "bk-dan-1", {"user": "bk-dan", "volumes": ["workspace"], "consistent": True})
    status = finished(bhub, "VolumeBackup", "bk-dan-1", timeout=120)
    assert status["phase"] == "Succeeded", status
    assert status["users"][0]["outcome"] == "Succeeded" and "crash-consistent" not in status["users"][0]["message"]
    assert not status["users"][0].get("stoppedServers")
    reasons = [e["reason"] for e in events(bhub, "VolumeBackup", "bk-dan-1")]
    assert reasons.index("StoppingServers") < reasons.index("BackedUp") < reasons.index("ServersStarted")
    bhub.wait_ready("bk-dan")  # started again

    apply(bhub, "VolumeRestore", "bk-dan-restore", {"backup": "bk-dan-1", "user": "bk-dan"})
    status = finished(bhub, "VolumeRestore", "bk-dan-restore")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert status["phase"] == "Failed" and ready["reason"] == "ServerRunning", status
    bhub.stop_server("bk-dan")
    in_volume(engine, bhub.volume_name("bk-dan", "workspace"), "rm /v/lab.txt")
    apply(bhub, "VolumeRestore", "bk-dan-restore-2", {"backup": "bk-dan-1", "user": "bk-dan"})
    assert finished(bhub, "VolumeRestore", "bk-dan-restore-2")["phase"] == "Succeeded"
    assert in_volume(engine, bhub.volume_name("bk-dan", "workspace"), "cat /v/lab.txt") == "from the lab\n"


def test_reset_with_a_backup_first(bhub: Hub) -> None:
    """The self-service reset with `backupFirst`: backed up, then removed; restorable."""
    engine = docker.from_env()
    fill(engine, bhub, "bk-eve", "cache")
    before = tree(engine, bhub.volume_name("bk-eve", "cache"))
    r = bhub.api("POST", "users/bk-eve/volume-resets", json={"volumes": ["cache"], "backupFirst": True})
    assert r.status_code == 202, r.text
    name = r.json()["name"]
    status = finished(bhub, "VolumeReset", name)
    assert status["phase"] == "Succeeded" and status["backup"] == f"{name}-bk", status
    assert not engine.volumes.list(filters={"name": bhub.volume_name("bk-eve", "cache")})
    backup = resource(bhub, "VolumeBackup", f"{name}-bk")["status"]
    assert backup["phase"] == "Succeeded" and [a["volume"] for a in backup["archives"]] == ["cache"]
    apply(bhub, "VolumeRestore", "bk-eve-restore", {"backup": f"{name}-bk", "user": "bk-eve"})
    assert finished(bhub, "VolumeRestore", "bk-eve-restore")["phase"] == "Succeeded"
    assert tree(engine, bhub.volume_name("bk-eve", "cache")) == before


def test_a_user_restores_their_backup_from_the_home_page(bhub: Hub, tmp_path: Path) -> None:
    """My backups on the home page (stopped server): the row, then Restore, confirmed."""
    engine = docker.from_env()
    admin = bhub.login("admin")[0]
    assert admin is not None
    bhub.approved_user(admin, "bk-web").close()
    fill(engine, bhub, "bk-web", "workspace")
    before = tree(engine, bhub.volume_name("bk-web", "workspace"))
    apply(bhub, "VolumeBackup", "bk-web-1", {"user": "bk-web", "volumes": ["workspace"]})
    assert finished(bhub, "VolumeBackup", "bk-web-1")["phase"] == "Succeeded"
    in_volume(engine, bhub.volume_name("bk-web", "workspace"), "rm -rf /v/projects /v/abs-link")
    with chromium(tmp_path / "profile") as driver:
        try:
            sign_in(driver, bhub, "bk-web")
            button = wait(driver).until(
                ec.element_to_be_clickable((By.CSS_SELECTOR, "#backups-list button[data-backup='bk-web-1']"))
            )
            row = driver.find_element(By.CSS_SELECTOR, "#backups-list tr").text
            assert "workspace" in row and "KiB" in row, row
            driver.execute_script("window.confirm = () => true;")  # the browser's own dialog
            button.click()
            status = (By.ID, "self-service-status")
            wait(driver, 60).until(ec.text_to_be_present_in_element(status, "Restored: workspace"))
            shot(driver, "backups-restored-from-home")
        finally:
            shot(driver, "backups-last-state")
    assert tree(engine, bhub.volume_name("bk-web", "workspace")) == before


def test_schedule_keeps_exactly_its_retention(bhub: Hub, tmp_path: Path) -> None:
    """A cron every minute with keepLast 1: after the second run, only the newest backup and
    its archives are left."""
    apply(bhub, "BackupSchedule", "bk-nightly", {"schedule": "* * * * *", "selector": {"users": ["bk-cid"]},
          "volumes": ["workspace"], "retention": {"keepLast": 1}})  # fmt: skip

    def runs() -> list[dict]:
        return status(bhub, "BackupSchedule", "bk-nightly").get("runs", [])

    wait_for(lambda: len(runs()) >= 2, 150, "two runs of the schedule", interval=1)
    done = runs()
    assert [r["phase"] for r in done[:2]] == ["Succeeded", "Succeeded"]
    assert done[0]["users"] == {"bk-cid": "Succeeded"}
    items = bhub.api("GET", "resources/volumebackup").json()["items"]
    mine = sorted(i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith("bk-nightly-"))
    assert mine == [done[0]["backup"]]
    folders = in_volume(docker.from_env(), location(bhub), "ls /v").split()
    assert done[0]["backup"] in folders and done[1]["backup"] not in folders
    bhub.api("DELETE", "resources/backupschedule/bk-nightly")
