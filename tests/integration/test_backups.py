"""Backups on the real engine and hub: a tree of every kind of file survives backup, reset
and restore; a corrupt archive is refused with the volume untouched; users see and restore
only their own backups; a schedule keeps exactly what its retention says. Bounds (issue 22):
another user's archives only by a hub admin, set-id bits dropped on restore, sparse files
kept sparse, helpers killed at the deadline and stopped with their request, one helper per
user, a user's own backups limited and expiring, sizes and lists from surveys.

One platform of its own (backup location: its own named volume, labelled, removed after).
The users' volumes are filled by a root container (owners other than the lab user, modes,
links, xattrs), not through a lab: the test is about the backup, not the lab.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.harness import Hub, own_hub, wait_for
from tests.integration.test_browser import chromium, shot, sign_in, wait
from vocabulary import naming

PLATFORM = "jhds-test-backup"
LOCATION = f"{PLATFORM}-backups"
IMAGE = "jupyterhub-ds/base:bookworm"
USERS = ("bk-ann", "bk-bob", "bk-cid", "bk-dan", "bk-eve", "bk-fay", "bk-gus", "bk-hal", "bk-ivy", "bk-jo", "bk-kim")
HELPER = "io.jupyterhub-ds.backup-helper"
REQUEST_LABEL = "io.jupyterhub-ds.backup-request"  # <Kind>.<name> of the request a helper works for
REQUEST = "io.jupyterhub-ds.backup-request"  # "<Kind>.<name>" of the request a helper works for
# Incompressible data gzip needs many seconds for on this 2-CPU host: a helper that is
# still running when the test looks (deadline, deletion, one per user).
SLOW = "head -c 300M /dev/urandom > /v/random.bin\n"
# 2 GB apparent, a few KB on disk (one block of data in the middle).
SPARSE = "truncate -s 2G /v/sparse.img && printf data | dd of=/v/sparse.img bs=1 seek=1000000000 conv=notrunc\n"


# Files of every kind: owners and modes, a setgid folder, symlinks (relative, absolute,
# dangling), a hard link, an empty folder, non-ASCII and awkward names, an xattr.
FILL = r"""
set -e
cd /v
mkdir -p projects/empty "données/ünïcödé ✓" .config
printf 'hello\n' > projects/a.txt
head -c 200000 /dev/urandom > projects/blob.bin
printf 'ß€漢字\n' > "données/ünïcödé ✓/fichier été.txt"
printf 'secret\n' > .config/token && chmod 600 .config/token
ln -s ../projects/a.txt .config/rel-link
ln -s /etc/hostname abs-link
ln -s does-not-exist dangling
ln projects/a.txt projects/hard-a.txt
chown -R 1000:100 projects && chown 0:0 projects/blob.bin && chown 4242:4343 .config/token
chmod 2775 projects && chmod 0700 .config && chmod 0751 "données"
touch -d '2020-01-02 03:04:05' projects/a.txt
python3 -c "import os; os.setxattr('projects/blob.bin', 'user.origin', b'test')" 2>/dev/null || true
"""

# One line per entry: path, type, uid, gid, mode, mtime, link target or sha256, hard-link
# group, xattrs. Identical listings mean an identical tree.
LISTING = r"""
import hashlib, json, os, stat
root = "/v"
inodes = {}
for dirpath, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs + files) + ([""] if dirpath == root else []):
        path = os.path.join(dirpath, name) if name else root
        st = os.lstat(path)
        rel = os.path.relpath(path, root)
        if stat.S_ISLNK(st.st_mode):
            what = "-> " + os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            what = hashlib.sha256(open(path, "rb").read()).hexdigest()
        else:
            what = ""
        group = inodes.setdefault(st.st_ino, rel) if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode) else ""
        try:
            keys = os.listxattr(path, follow_symlinks=False)
            xattrs = sorted((k, os.getxattr(path, k, follow_symlinks=False).hex()) for k in keys)
        except OSError:
            xattrs = []
        mtime = 0 if stat.S_ISDIR(st.st_mode) else int(st.st_mtime)
        row = [rel, stat.filemode(st.st_mode), st.st_uid, st.st_gid, mtime, what, group, xattrs]
        print(json.dumps(row, ensure_ascii=False))
"""


def vol(user: str, key: str, platform: str = PLATFORM) -> str:
    return naming.volume_name(f"{platform}-{{username}}_{{volume}}", user, key)


def in_volume(engine: docker.DockerClient, volume: str, script: str, python: bool = False) -> str:
    """The output of a root container on the volume (mounted at /v). Output should end with a
    newline: the engine's log may drop an unterminated last line."""
    command = ["python3", "-c", script] if python else ["sh", "-c", script]
    out = engine.containers.run(
        IMAGE, command, volumes={volume: {"bind": "/v", "mode": "rw"}}, network_mode="none", user="0", remove=True
    )
    return out.decode()


def tree(engine: docker.DockerClient, volume: str) -> list[str]:
    return in_volume(engine, volume, LISTING, python=True).splitlines()


def fill(engine: docker.DockerClient, user: str, key: str, extra: str = "", platform: str = PLATFORM) -> None:
    """Create the user's volume, labelled, and fill it with files of every kind."""
    labels = naming.object_labels(platform, user) | {naming.LABEL_VOLUME: key}
    engine.volumes.create(vol(user, key, platform), labels=labels)
    in_volume(engine, vol(user, key, platform), FILL + extra)


def apply(hub: Hub, kind: str, name: str, spec: dict) -> None:
    doc = {"apiVersion": "jupyterhub-ds/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    r = hub.api("POST", "manifests", data=json.dumps(doc).encode())
    assert r.status_code == 200, r.text


def finished(hub: Hub, kind: str, name: str, timeout: float = 60) -> dict:
    def done() -> dict | None:
        r = hub.api("GET", f"resources/{kind.lower()}/{name}")
        status = r.json().get("status") or {} if r.status_code == 200 else {}
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    return wait_for(done, timeout, f"{kind}/{name} finished", interval=0.3)


@pytest.fixture(scope="module")
def bhub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    engine = docker.from_env()
    env = {"BACKUP_CONCURRENCY": "2", "BACKUP_USER_MAX": "1"}
    with own_hub(engine, tmp_path_factory.mktemp("backup-hub"), PLATFORM, env) as hub:
        for user in USERS:
            hub.create_user(user)
        yield hub


def test_round_trip_backup_reset_restore(bhub: Hub) -> None:
    engine = docker.from_env()
    for key in ("home", "workspace"):
        fill(engine, "bk-ann", key)
    before = {key: tree(engine, vol("bk-ann", key)) for key in ("home", "workspace")}
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
    manifest = json.loads(in_volume(engine, LOCATION, "cat /v/bk-ann-1/bk-2dann/manifest.json; echo"))
    assert {a["sha256"] for a in manifest["archives"]} == {a["sha256"] for a in archives.values()}
    assert manifest["user"] == "bk-ann" and manifest["startedAt"] <= manifest["finishedAt"]

    apply(bhub, "VolumeReset", "bk-ann-reset", {"user": "bk-ann", "volumes": ["home", "workspace"]})
    assert finished(bhub, "VolumeReset", "bk-ann-reset")["phase"] == "Succeeded"
    assert not engine.volumes.list(filters={"name": vol("bk-ann", "home")})

    t0 = time.monotonic()
    apply(bhub, "VolumeRestore", "bk-ann-restore", {"backup": "bk-ann-1", "user": "bk-ann"})
    status = finished(bhub, "VolumeRestore", "bk-ann-restore")
    print(f"restore of 2 volumes: {time.monotonic() - t0:.2f} s")
    assert status["phase"] == "Succeeded", status
    assert sorted(status["restoredVolumes"]) == ["home", "workspace"]
    after = {key: tree(engine, vol("bk-ann", key)) for key in ("home", "workspace")}
    assert after == before
    labels = engine.volumes.get(vol("bk-ann", "home")).attrs["Labels"]
    assert labels[naming.LABEL_USER] == "bk-ann"  # recreated as the spawner would


def test_corrupt_archive_is_refused_and_the_volume_untouched(bhub: Hub) -> None:
    engine = docker.from_env()
    fill(engine, "bk-bob", "home")
    apply(bhub, "VolumeBackup", "bk-bob-1", {"user": "bk-bob", "volumes": ["home"]})
    assert finished(bhub, "VolumeBackup", "bk-bob-1")["phase"] == "Succeeded"
    in_volume(engine, vol("bk-bob", "home"), "echo 'written after the backup' > /v/newer.txt")
    before = tree(engine, vol("bk-bob", "home"))
    # One byte flipped in the middle of the archive.
    flip = (
        "f=/v/bk-bob-1/bk-2dbob/home.tar.gz; printf 'X' | dd of=$f bs=1 seek=$(( $(stat -c %s $f) / 2 )) conv=notrunc"
    )
    in_volume(engine, LOCATION, flip)

    apply(bhub, "VolumeRestore", "bk-bob-restore", {"backup": "bk-bob-1", "user": "bk-bob"})
    status = finished(bhub, "VolumeRestore", "bk-bob-restore")
    assert status["phase"] == "Failed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ArchiveCorrupt"
    assert "is corrupt: sha256" in ready["message"] and "untouched" in ready["message"]
    assert tree(engine, vol("bk-bob", "home")) == before


def test_users_see_and_restore_only_their_own_backups(bhub: Hub) -> None:
    engine = docker.from_env()
    fill(engine, "bk-cid", "workspace")
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
    in_volume(engine, vol("bk-cid", "workspace"), "rm -rf /v/projects")
    r = bhub.api("POST", "users/bk-cid/backups/bk-cid-1/restore", json={"volumes": ["workspace"]})
    assert r.status_code == 202, r.text
    rname = r.json()["name"]
    follow = wait_for(
        lambda: (b := bhub.api("GET", f"users/bk-cid/volume-restores/{rname}").json())["finished"] and b,
        60,
        "the restore",
    )
    assert follow["phase"] == "Succeeded", follow
    assert "projects/a.txt" in "\n".join(tree(engine, vol("bk-cid", "workspace")))


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
    events = [e["reason"] for e in bhub.api("GET", "resources/volumebackup/bk-dan-1/events").json()["items"]]
    assert events.index("StoppingServers") < events.index("BackedUp") < events.index("ServersStarted")
    bhub.wait_ready("bk-dan")  # started again

    apply(bhub, "VolumeRestore", "bk-dan-restore", {"backup": "bk-dan-1", "user": "bk-dan"})
    status = finished(bhub, "VolumeRestore", "bk-dan-restore")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert status["phase"] == "Failed" and ready["reason"] == "ServerRunning", status
    bhub.stop_server("bk-dan")
    in_volume(engine, vol("bk-dan", "workspace"), "rm /v/lab.txt")
    apply(bhub, "VolumeRestore", "bk-dan-restore-2", {"backup": "bk-dan-1", "user": "bk-dan"})
    assert finished(bhub, "VolumeRestore", "bk-dan-restore-2")["phase"] == "Succeeded"
    assert in_volume(engine, vol("bk-dan", "workspace"), "cat /v/lab.txt") == "from the lab\n"


def test_reset_with_a_backup_first(bhub: Hub) -> None:
    """The self-service reset with `backupFirst`: backed up, then removed; restorable."""
    engine = docker.from_env()
    fill(engine, "bk-eve", "cache")
    before = tree(engine, vol("bk-eve", "cache"))
    r = bhub.api("POST", "users/bk-eve/volume-resets", json={"volumes": ["cache"], "backupFirst": True})
    assert r.status_code == 202, r.text
    name = r.json()["name"]
    status = finished(bhub, "VolumeReset", name)
    assert status["phase"] == "Succeeded" and status["backup"] == f"{name}-bk", status
    assert not engine.volumes.list(filters={"name": vol("bk-eve", "cache")})
    backup = bhub.api("GET", f"resources/volumebackup/{name}-bk").json()["status"]
    assert backup["phase"] == "Succeeded" and [a["volume"] for a in backup["archives"]] == ["cache"]
    apply(bhub, "VolumeRestore", "bk-eve-restore", {"backup": f"{name}-bk", "user": "bk-eve"})
    assert finished(bhub, "VolumeRestore", "bk-eve-restore")["phase"] == "Succeeded"
    assert tree(engine, vol("bk-eve", "cache")) == before


def test_a_user_restores_their_backup_from_the_home_page(bhub: Hub, tmp_path: Path) -> None:
    """My backups on the home page (stopped server): the row, then Restore, confirmed."""
    engine = docker.from_env()
    admin = bhub.login("admin")[0]
    assert admin is not None
    bhub.approved_user(admin, "bk-web").close()
    fill(engine, "bk-web", "workspace")
    before = tree(engine, vol("bk-web", "workspace"))
    apply(bhub, "VolumeBackup", "bk-web-1", {"user": "bk-web", "volumes": ["workspace"]})
    assert finished(bhub, "VolumeBackup", "bk-web-1")["phase"] == "Succeeded"
    in_volume(engine, vol("bk-web", "workspace"), "rm -rf /v/projects /v/abs-link")
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
    assert tree(engine, vol("bk-web", "workspace")) == before


def ready(status: dict) -> dict:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def helpers(engine: docker.DockerClient, user: str = "", backup: str = "") -> list[str]:
    """Names of this platform's helper containers (of one user's backups, of one backup):
    the user is in the name (`naming.task_name`: ...-<user slug>-<hash>), the request in
    the label `io.jupyterhub-ds.backup-request` (<Kind>.<name>)."""
    label = [f"{naming.LABEL_PLATFORM}={PLATFORM}", HELPER]
    slug = re.sub(r"[^a-z0-9]+", "-", user.lower()).strip("-")[:14].strip("-")
    found = []
    for c in engine.api.containers(all=True, filters={"label": label}):
        name, request = c["Names"][0].lstrip("/"), (c.get("Labels") or {}).get(REQUEST_LABEL, "")
        if re.search(rf"-{re.escape(slug)}-[0-9a-f]{{12}}$", name) and backup in request:
            found.append(name)
    return found


def test_another_users_backup_is_restored_by_hub_admins_only_and_without_set_id_bits(bhub: Hub) -> None:
    """Issue 22 item 2: an operator restores a user's own backup only; another user's
    archives need a hub admin (`sourceUser`, never implied); restored files lose setuid and
    setgid (a folder keeps its setgid)."""
    engine = docker.from_env()
    set_id = "cp /bin/true /v/suid && chmod 4755 /v/suid && cp /bin/true /v/sgid && chmod 2755 /v/sgid\n"
    fill(engine, "bk-fay", "home", set_id)
    apply(bhub, "VolumeBackup", "bk-fay-1", {"user": "bk-fay", "volumes": ["home"]})
    assert finished(bhub, "VolumeBackup", "bk-fay-1")["phase"] == "Succeeded"
    admin = bhub.login("admin")[0]
    assert admin is not None
    op = bhub.approved_user(admin, "bk-op")
    bhub.api("POST", "groups/platform-operators/users", json={"users": ["bk-op"]})

    def restore(session, name: str, spec: dict):  # type: ignore[no-untyped-def]
        doc = {"apiVersion": "jupyterhub-ds/v1", "kind": "VolumeRestore", "metadata": {"name": name}, "spec": spec}
        return bhub.as_user(session, "POST", "manifests", data=json.dumps(doc).encode())

    try:
        cross = {"backup": "bk-fay-1", "user": "bk-gus", "sourceUser": "bk-fay"}
        r = restore(op, "bk-op-cross", cross)
        assert r.status_code == 403 and "hub admins" in r.json()["message"], r.text
        # Without sourceUser the backup's one user is not implied: nothing of bk-fay's reaches bk-gus.
        r = restore(op, "bk-op-implied", {"backup": "bk-fay-1", "user": "bk-gus"})
        assert r.status_code == 200, r.text
        status = finished(bhub, "VolumeRestore", "bk-op-implied")
        assert status["phase"] == "Failed" and ready(status)["reason"] == "NotInBackup", status
        assert not engine.volumes.list(filters={"name": vol("bk-gus", "home")})
        # The user's own backup: the operator may.
        in_volume(engine, vol("bk-fay", "home"), "rm -rf /v/projects")
        r = restore(op, "bk-op-own", {"backup": "bk-fay-1", "user": "bk-fay"})
        assert r.status_code == 200, r.text
        assert finished(bhub, "VolumeRestore", "bk-op-own")["phase"] == "Succeeded"
    finally:
        bhub.api("DELETE", "groups/platform-operators/users", json={"users": ["bk-op"]})
    apply(bhub, "VolumeRestore", "bk-admin-cross", cross)  # the automation token holds admin:users
    assert finished(bhub, "VolumeRestore", "bk-admin-cross")["phase"] == "Succeeded"
    for user in ("bk-fay", "bk-gus"):
        modes = in_volume(engine, vol(user, "home"), "stat -c '%n %A' /v/suid /v/sgid /v/projects")
        assert modes.split("\n")[:3] == ["/v/suid -rwxr-xr-x", "/v/sgid -rwxr-xr-x", "/v/projects drwxrwsr-x"], modes
        assert in_volume(engine, vol(user, "home"), "find /v ! -type d -perm /6000") == ""


@pytest.fixture(scope="module")
def slow(bhub: Hub) -> str:
    """bk-hal's cache volume, holding what takes a helper many seconds to archive (once)."""
    engine = docker.from_env()
    labels = naming.object_labels(PLATFORM, "bk-hal") | {naming.LABEL_VOLUME: "cache"}
    engine.volumes.create(vol("bk-hal", "cache"), labels=labels)
    in_volume(engine, vol("bk-hal", "cache"), SLOW)
    return vol("bk-hal", "cache")


def test_sparse_files_stay_sparse_and_a_helper_past_its_deadline_is_killed(bhub: Hub, slow: str) -> None:
    """Issue 22 item 5: a 2 GB sparse file is archived and restored as holes; a helper
    still at work at `activeDeadlineSeconds` is killed, the backup `Failed`,
    DeadlineExceeded, nothing of it left; backups and restores have a default deadline."""
    engine = docker.from_env()
    labels = naming.object_labels(PLATFORM, "bk-hal") | {naming.LABEL_VOLUME: "home"}
    engine.volumes.create(vol("bk-hal", "home"), labels=labels)
    in_volume(engine, vol("bk-hal", "home"), SPARSE)
    t0 = time.monotonic()
    apply(bhub, "VolumeBackup", "bk-hal-sparse", {"user": "bk-hal", "volumes": ["home"]})
    status = finished(bhub, "VolumeBackup", "bk-hal-sparse")
    print(f"backup of a 2 GB sparse file: {time.monotonic() - t0:.2f} s, {status['bytes']} bytes")
    assert status["phase"] == "Succeeded" and status["bytes"] < 100_000, status
    spec = bhub.api("GET", "resources/volumebackup/bk-hal-sparse").json()["spec"]
    assert spec["activeDeadlineSeconds"] == 6 * 3600  # the default
    in_volume(engine, vol("bk-hal", "home"), "rm /v/sparse.img")
    apply(bhub, "VolumeRestore", "bk-hal-sparse-back", {"backup": "bk-hal-sparse", "user": "bk-hal"})
    assert finished(bhub, "VolumeRestore", "bk-hal-sparse-back")["phase"] == "Succeeded"
    sizes = in_volume(engine, vol("bk-hal", "home"), "stat -c '%s %b %B' /v/sparse.img").split()
    assert int(sizes[0]) == 2 << 30 and int(sizes[1]) * int(sizes[2]) < 1 << 20, sizes  # 2 GB, < 1 MB on disk

    t0 = time.monotonic()
    apply(bhub, "VolumeBackup", "bk-hal-late", {"user": "bk-hal", "volumes": ["cache"], "activeDeadlineSeconds": 5})
    status = finished(bhub, "VolumeBackup", "bk-hal-late", timeout=60)
    took = time.monotonic() - t0
    print(f"backup past its 5 s deadline ended after {took:.1f} s")
    assert status["phase"] == "Failed" and ready(status)["reason"] == "DeadlineExceeded", status
    assert "killed at the deadline" in status["users"][0]["message"], status
    assert took < 20, took
    assert helpers(engine, "bk-hal") == []
    assert in_volume(engine, LOCATION, "ls -A /v/bk-hal-late 2>/dev/null; echo") == "\n"  # no .part, no archive


def test_a_deleted_backup_stops_its_helper_and_a_user_runs_one_helper_at_a_time(bhub: Hub, slow: str) -> None:
    """Issue 22 item 5: deleting a VolumeBackup stops its helper at once (what it wrote is
    removed); cancelling and recreating a reset with a backup first never runs two helpers
    for one user (the cancelled reset's backup is stopped)."""
    engine = docker.from_env()
    apply(bhub, "VolumeBackup", "bk-hal-gone", {"user": "bk-hal", "volumes": ["cache"]})
    wait_for(lambda: helpers(engine, "bk-hal"), 30, "the helper running")
    t0 = time.monotonic()
    assert bhub.api("DELETE", "resources/volumebackup/bk-hal-gone").status_code == 204
    wait_for(lambda: not helpers(engine, "bk-hal"), 15, "the helper stopped", interval=0.2)
    print(f"helper stopped {time.monotonic() - t0:.1f} s after its backup was deleted")
    assert time.monotonic() - t0 < 8
    assert in_volume(engine, LOCATION, "ls -A /v/bk-hal-gone 2>/dev/null; echo") == "\n"

    most, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            most[0] = max(most[0], len(helpers(engine, "bk-hal")))
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
            wait_for(lambda name=name: helpers(engine, "bk-hal", f"{name}-bk"), 30, "the backup first running")
            assert bhub.api("DELETE", f"users/bk-hal/volume-resets/{name}").status_code == 204
        wait_for(lambda: not helpers(engine, "bk-hal"), 20, "every helper stopped", interval=0.2)
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
    labels = {naming.LABEL_PLATFORM: PLATFORM, HELPER: "backup", REQUEST: "VolumeBackup.bk-ghost"}
    name = naming.task_name(PLATFORM, "backup", "bk-hal", "bk-ghost")  # as the platform names helpers
    engine.containers.run(IMAGE, ["sleep", "300"], name=name, labels=labels, network_mode="none", detach=True)
    t0 = time.monotonic()
    wait_for(lambda: not helpers(engine, "bk-hal", "bk-ghost"), 50, "the orphan stopped", interval=0.5)
    print(f"orphaned helper removed after {time.monotonic() - t0:.1f} s (resync every 30 s)")
    reasons = [e["reason"] for e in bhub.api("GET", "events").json()["items"] if e["kind"] == "BackupHelpers"]
    assert "OrphanStopped" in reasons, reasons


def test_a_users_own_backups_are_limited_and_expire_with_their_archives(bhub: Hub) -> None:
    """Issue 22 item 5: backups taken before a user's resets count against BACKUP_USER_MAX
    (1 here): the newer one that succeeded removes the older, archives first; they expire by
    default (BACKUP_USER_TTL_SECONDS), and a backup deleted by its TTL takes its archives."""
    engine = docker.from_env()
    taken = []
    for _ in range(2):
        fill(engine, "bk-ivy", "cache")
        r = bhub.api("POST", "users/bk-ivy/volume-resets", json={"volumes": ["cache"], "backupFirst": True})
        assert r.status_code == 202, r.text
        assert finished(bhub, "VolumeReset", r.json()["name"])["phase"] == "Succeeded"
        taken.append(f"{r.json()['name']}-bk")
    newest = bhub.api("GET", f"resources/volumebackup/{taken[1]}").json()
    assert newest["spec"]["ttlSecondsAfterFinished"] == 14 * 24 * 3600, newest["spec"]
    wait_for(lambda: bhub.api("GET", f"resources/volumebackup/{taken[0]}").status_code == 404, 20, "the older pruned")
    folders = in_volume(engine, LOCATION, "ls /v").split()
    assert taken[1] in folders and taken[0] not in folders

    fill(engine, "bk-jo", "home")
    apply(bhub, "VolumeBackup", "bk-jo-ttl", {"user": "bk-jo", "volumes": ["home"], "ttlSecondsAfterFinished": 2})
    assert finished(bhub, "VolumeBackup", "bk-jo-ttl")["phase"] == "Succeeded"
    wait_for(lambda: bhub.api("GET", "resources/volumebackup/bk-jo-ttl").status_code == 404, 30, "expired")
    assert "bk-jo-ttl" not in in_volume(engine, LOCATION, "ls /v").split()


def test_sizes_and_backup_lists_come_from_surveys(bhub: Hub) -> None:
    """Issue 22 item 9: Manage Volumes' sizes come from one survey of the engine, shared by
    concurrent requests and said how old; a user's backup list from an index rebuilt only
    when the backups change."""
    engine = docker.from_env()
    for key in ("home", "workspace"):
        fill(engine, "bk-kim", key)
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


def test_schedule_keeps_exactly_its_retention(bhub: Hub, tmp_path: Path) -> None:
    """A cron every minute with keepLast 1: after the second run, only the newest backup and
    its archives are left."""
    apply(bhub, "BackupSchedule", "bk-nightly", {"schedule": "* * * * *", "selector": {"users": ["bk-cid"]},
          "volumes": ["workspace"], "retention": {"keepLast": 1}})  # fmt: skip

    def runs() -> list[dict]:
        return (bhub.api("GET", "resources/backupschedule/bk-nightly").json().get("status") or {}).get("runs", [])

    wait_for(lambda: len(runs()) >= 2, 150, "two runs of the schedule", interval=1)
    done = runs()
    assert [r["phase"] for r in done[:2]] == ["Succeeded", "Succeeded"]
    assert done[0]["users"] == {"bk-cid": "Succeeded"}
    items = bhub.api("GET", "resources/volumebackup").json()["items"]
    mine = sorted(i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith("bk-nightly-"))
    assert mine == [done[0]["backup"]]
    folders = in_volume(docker.from_env(), LOCATION, "ls /v").split()
    assert done[0]["backup"] in folders and done[1]["backup"] not in folders
    bhub.api("DELETE", "resources/backupschedule/bk-nightly")
