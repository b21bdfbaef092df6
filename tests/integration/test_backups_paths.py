"""Backup paths `test_backups.py` leaves out, on the real engine, hub and helper: a consistent
BackupSchedule (the server stopped, backed up, started again); one user of several failing
part-way (a real ENOSPC: a tiny tmpfs on that user's folder) while the others succeed; and
BACKUP_LOCATION as an absolute host folder, archives checked on the host.

One platform of its own whose backup location is a temporary host folder.
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import pytest

from tests.harness import Hub, wait_for
from tests.helpers import apply, condition, events, finished, resource, status
from tests.integration.backup_volumes import fill, in_volume, tree
from vocabulary import naming

USERS = ("bp-sch", "bp-ok", "bp-big", "bp-none", "bp-host")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as archive:
        return {m.name: m for m in archive.getmembers()}


@pytest.fixture(scope="module")
def location(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bkp2-location")


@pytest.fixture(scope="module")
def bhub(own_platforms, location: Path) -> Hub:
    return own_platforms.platform("bkp2", {"BACKUP_LOCATION": str(location), "BACKUP_CONCURRENCY": "2"}, USERS)


def test_consistent_schedule_stops_backs_up_and_starts_the_server(bhub: Hub, location: Path) -> None:
    """`consistent: true` on a schedule: its backup stops the running server, archives what the
    lab wrote, starts the server again; the run records the user's outcome."""
    engine = docker.from_env()
    bhub.start_server("bp-sch")
    bhub.exec(engine, "bp-sch", "echo 'saved in the lab' > /home/lab/workspace/lab.txt")
    started = engine.containers.get(bhub.container_name("bp-sch")).attrs["State"]["StartedAt"]
    spec = {"schedule": "* * * * *", "selector": {"users": ["bp-sch"]}, "volumes": ["workspace"],
            "consistent": True, "retention": {"keepLast": 2}}  # fmt: skip
    apply(bhub, "BackupSchedule", "bp-cons", spec)
    t0 = time.monotonic()
    try:
        run = wait_for(
            lambda: (status(bhub, "BackupSchedule", "bp-cons").get("runs") or [None])[0],
            100,
            "the schedule's first run",
            interval=1,
        )
        backup = resource(bhub, "VolumeBackup", run["backup"])
    finally:
        bhub.api("DELETE", "resources/backupschedule/bp-cons")
    print(f"first run of the schedule finished after {time.monotonic() - t0:.1f} s")
    assert run["phase"] == "Succeeded" and run["users"] == {"bp-sch": "Succeeded"}, run
    assert backup["spec"]["consistent"] is True
    entry = backup["status"]["users"][0]
    assert entry["message"].endswith("(consistent)") and not entry.get("stoppedServers"), entry
    reasons = [e["reason"] for e in events(bhub, "VolumeBackup", run["backup"])]
    assert reasons.index("StoppingServers") < reasons.index("BackedUp") < reasons.index("ServersStarted"), reasons
    bhub.wait_ready("bp-sch")  # started again: a new start of the server
    assert engine.containers.get(bhub.container_name("bp-sch")).attrs["State"]["StartedAt"] != started
    archive = location / backup["status"]["archives"][0]["path"]
    with tarfile.open(archive, "r:gz") as t:
        lab = t.extractfile("./lab.txt")
        assert lab is not None and lab.read() == b"saved in the lab\n"


def test_one_user_failing_part_way_fails_only_that_user(bhub: Hub, location: Path) -> None:
    """A selector over three users: one skipped (no volumes), one whose workspace archive
    runs out of space (a 1 MB tmpfs on its folder, after its home archive was written), one
    fine. The status names who failed and why; nothing of the failed user is left; a restore
    into the failed or the skipped user is refused, never filled with another's archives."""
    engine = docker.from_env()
    for key in ("home", "workspace"):
        fill(engine, bhub, "bp-ok", key)
    fill(engine, bhub, "bp-big", "home")
    fill(engine, bhub, "bp-big", "workspace", "head -c 3000000 /dev/urandom > big.bin\n")
    ok_before, big_before = (
        tree(engine, bhub.volume_name("bp-ok", "workspace")),
        tree(engine, bhub.volume_name("bp-big", "workspace")),
    )
    assert bhub.api("POST", "groups/bp-team", json={"users": ["bp-ok", "bp-big"]}).status_code == 201
    full = location / "bp-sel-1" / naming.escape_name("bp-big")
    full.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(full)], check=True)
    try:
        spec = {"selector": {"groups": ["bp-team"], "users": ["bp-none"]}, "volumes": ["home", "workspace"]}
        apply(bhub, "VolumeBackup", "bp-sel-1", spec)
        status = finished(bhub, "VolumeBackup", "bp-sel-1")
        left = sorted(p.name for p in full.iterdir())
    finally:
        subprocess.run(["umount", str(full)], check=True)
    users = {u["user"]: u for u in status["users"]}
    assert status["phase"] == "Failed", status
    assert users["bp-ok"]["outcome"] == "Succeeded" and users["bp-none"]["outcome"] == "Skipped", users
    big = users["bp-big"]
    print(f"the failed user: {big['message']}")
    assert big["outcome"] == "Failed" and big["message"].startswith("tar of workspace failed"), big
    assert "No space left on device" in big["message"], big
    assert (
        condition(status)["reason"] == "UsersFailed"
        and "bp-big: tar of workspace failed" in condition(status)["message"]
    )
    assert sorted((a["user"], a["volume"]) for a in status["archives"]) == [("bp-ok", "home"), ("bp-ok", "workspace")]
    assert left == []  # neither the half-written .part nor a home archive without its manifest
    ok = location / "bp-sel-1" / naming.escape_name("bp-ok")
    assert sorted(p.name for p in ok.iterdir()) == ["home.tar.gz", "manifest.json", "workspace.tar.gz"]

    for user in ("bp-big", "bp-none"):
        apply(bhub, "VolumeRestore", f"{user}-from-sel", {"backup": "bp-sel-1", "user": user})
        refused = finished(bhub, "VolumeRestore", f"{user}-from-sel")
        assert refused["phase"] == "Failed" and condition(refused)["reason"] == "NotInBackup", refused
    assert tree(engine, bhub.volume_name("bp-big", "workspace")) == big_before
    assert not engine.volumes.list(filters={"name": bhub.volume_name("bp-none", "workspace")})
    # The others' archives are restorable.
    in_volume(engine, bhub.volume_name("bp-ok", "workspace"), "rm -rf /v/projects")
    apply(bhub, "VolumeRestore", "bp-ok-from-sel", {"backup": "bp-sel-1", "user": "bp-ok", "volumes": ["workspace"]})
    assert finished(bhub, "VolumeRestore", "bp-ok-from-sel")["phase"] == "Succeeded"
    assert tree(engine, bhub.volume_name("bp-ok", "workspace")) == ok_before


def test_host_folder_location_round_trip(bhub: Hub, location: Path) -> None:
    """BACKUP_LOCATION an absolute host folder: backup, reset, restore; the archives on the
    host, root's only (folders 0700, files 0600), their sha256 and owners as recorded."""
    engine = docker.from_env()
    for key in ("home", "workspace"):
        fill(engine, bhub, "bp-host", key)
    before = {key: tree(engine, bhub.volume_name("bp-host", key)) for key in ("home", "workspace")}
    apply(bhub, "VolumeBackup", "bp-host-1", {"user": "bp-host"})
    status = finished(bhub, "VolumeBackup", "bp-host-1")
    assert status["phase"] == "Succeeded" and status["location"] == str(location), status
    folder = location / "bp-host-1" / naming.escape_name("bp-host")
    files = [folder / "manifest.json"] + [location / a["path"] for a in status["archives"]]
    assert sorted(p.name for p in folder.iterdir()) == ["home.tar.gz", "manifest.json", "workspace.tar.gz"]
    for path, mode in [(folder.parent, 0o700), (folder, 0o700)] + [(f, 0o600) for f in files]:
        st = path.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, mode), path
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["user"] == "bp-host" and manifest["volumes"] == ["home", "workspace"]
    for a in status["archives"]:
        path = location / a["path"]
        assert sha256(path) == a["sha256"] and path.stat().st_size == a["bytes"], a
        entries = members(path)
        assert len(entries) == a["files"] == 14, sorted(entries)
        token, projects = entries["./.config/token"], entries["./projects"]
        assert (token.uid, token.gid, token.mode) == (4242, 4343, 0o600)
        assert (projects.uid, projects.gid, projects.mode) == (1000, 100, 0o2775)

    apply(bhub, "VolumeReset", "bp-host-reset", {"user": "bp-host", "volumes": ["home", "workspace"]})
    assert finished(bhub, "VolumeReset", "bp-host-reset")["phase"] == "Succeeded"
    assert not engine.volumes.list(filters={"name": bhub.volume_name("bp-host", "home")})
    apply(bhub, "VolumeRestore", "bp-host-restore", {"backup": "bp-host-1", "user": "bp-host"})
    restored = finished(bhub, "VolumeRestore", "bp-host-restore")
    assert restored["phase"] == "Succeeded", restored
    assert {key: tree(engine, bhub.volume_name("bp-host", key)) for key in ("home", "workspace")} == before
