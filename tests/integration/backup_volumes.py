"""What the backup tests share: users' volumes filled with files of every kind by a root
container (owners other than the lab user, modes, links, xattrs: the tests are about the
backup, not the lab), listings that compare trees, and the platform's helper containers.

`test_backups.py` and `test_backups_bounds.py` share one platform (`BACKUP_ENV`)."""

from __future__ import annotations

import re

import docker

from tests.harness import Hub
from vocabulary import naming

BACKUP_ENV = {"BACKUP_CONCURRENCY": "2", "BACKUP_USER_MAX": "1"}
IMAGE = "jupyterhub-ds/base:bookworm"
HELPER = "io.jupyterhub-ds.backup-helper"
REQUEST = "io.jupyterhub-ds.backup-request"  # "<Kind>.<name>" of the request a helper works for

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


def location(hub: Hub) -> str:
    """The platform's backup location: by default a named volume of its own."""
    return f"{hub.platform}-backups"


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


def create(engine: docker.DockerClient, hub: Hub, user: str, key: str, script: str) -> str:
    """Create the user's volume, labelled as the platform labels it, and run `script` on it."""
    labels = naming.object_labels(hub.platform, user) | {naming.LABEL_VOLUME: key}
    engine.volumes.create(hub.volume_name(user, key), labels=labels)
    in_volume(engine, hub.volume_name(user, key), script)
    return hub.volume_name(user, key)


def fill(engine: docker.DockerClient, hub: Hub, user: str, key: str, extra: str = "") -> None:
    """Create the user's volume and fill it with files of every kind."""
    create(engine, hub, user, key, FILL + extra)


def helpers(engine: docker.DockerClient, hub: Hub, user: str = "", backup: str = "") -> list[str]:
    """Names of the platform's helper containers (of one user's backups, of one backup):
    the user is in the name (`naming.task_name`: ...-<user slug>-<hash>), the request in
    the label `io.jupyterhub-ds.backup-request` (<Kind>.<name>)."""
    label = [f"{naming.LABEL_PLATFORM}={hub.platform}", HELPER]
    slug = re.sub(r"[^a-z0-9]+", "-", user.lower()).strip("-")[:14].strip("-")
    found = []
    for c in engine.api.containers(all=True, filters={"label": label}):
        name, request = c["Names"][0].lstrip("/"), (c.get("Labels") or {}).get(REQUEST, "")
        if re.search(rf"-{re.escape(slug)}-[0-9a-f]{{12}}$", name) and backup in request:
            found.append(name)
    return found
