"""The program the backup helper container runs (`python3 -c <this file> OP JSON`).

Standard library and GNU tar only: it runs in the engine's small base image, as root, with
no network. Mounts: the per-user volumes at /src/<key> (read-only, backup) or /dst/<key>
(restore), the backup location at /backup. It prints one JSON object on its last line of
output; exit 0 done, 3 refused (nothing changed), anything else a failure.

- backup: GNU tar (`--numeric-owner --xattrs -p --sparse`: owners, modes, links, empty
  folders, any file name and the holes of sparse files survive) gzipped to
  `<key>.tar.gz.part`, hashed, renamed when whole; then `manifest.json`. If any step fails,
  or the helper is stopped (SIGTERM: its deadline, or its request deleted), what it wrote
  for the user is removed.
- restore: every archive's sha256 checked first; then each volume emptied and extracted;
  then setuid and setgid bits are taken off every restored non-folder (a restore must not
  hand anyone a set-id program; a folder's setgid, which only passes its group on, stays).
- delete: backup folders removed (a missing one is already gone).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime

CHUNK = 4 << 20
SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
REFUSED = 3


def now() -> str:
    return datetime.now(UTC).isoformat()


def safe(*parts: str) -> str:
    for part in parts:
        if not SAFE.match(part):
            raise SystemExit(f"unsafe path part {part!r}")
    return "/".join(parts)


def failed(what: str, stderr: str) -> SystemExit:
    """One line, as the hub reads only the last line of output: what failed and the tool's
    own words (`gzip: stdout: No space left on device; ...`), not only tar's closing line."""
    said = "; ".join(line.strip() for line in stderr.splitlines() if line.strip())
    return SystemExit(f"{what} failed: {said[-400:]}")


def archive_volume(key: str, target: str) -> dict:
    """tar.gz of /src/<key> into /backup/<target>: its size, sha256, entry count."""
    index, part, log = f"/tmp/{key}.index", f"/backup/{target}.part", f"/tmp/{key}.err"
    # --sparse: a file's holes are stored as holes (read by SEEK_HOLE), not as zeros to
    # compress, and come back as holes on extraction.
    command = ["tar", "--numeric-owner", "--xattrs", "--sparse", "--totals", "-C", f"/src/{key}", "-cpzv"]
    command += ["--index-file", index]
    # tar and its gzip write the file themselves, as a plain `tar czf` does (a pipe through
    # this process cost a quarter of the throughput); the hash is a second, cached read.
    with open(log, "wb") as err:
        code = subprocess.run([*command, "-f", part, "."], stderr=err, check=False).returncode
    with open(log, "rb") as f:
        errors = f.read().decode(errors="replace")
    # 1: some file changed while read (a running server): the archive is still whole.
    if code not in (0, 1):
        raise failed(f"tar of {key}", errors)
    digest, size = sha256(part), os.path.getsize(part)
    os.rename(part, f"/backup/{target}")
    with open(index, "rb") as f:
        files = sum(1 for _ in f)
    total = re.search(r"Total bytes written: (\d+)", errors)
    return {"volume": key, "path": target, "bytes": size, "sha256": digest, "files": files,
            "sourceBytes": int(total.group(1)) if total else 0}  # fmt: skip


def backup(args: dict) -> dict:
    folder = safe(args["backup"], args["userDir"])
    os.makedirs(f"/backup/{folder}", mode=0o700, exist_ok=True)
    started = now()
    try:
        archives = [archive_volume(key, f"{folder}/{safe(key)}.tar.gz") for key in args["volumes"]]
        manifest = {
            "backup": args["backup"],
            "user": args["user"],
            "volumes": [a["volume"] for a in archives],
            "archives": archives,
            "format": "tar.gz (GNU tar: numeric owners, modes, xattrs, links)",
            "startedAt": started,
            "finishedAt": now(),
        }
        with open(f"/backup/{folder}/manifest.json.part", "w") as f:
            json.dump(manifest, f, indent=2)
        os.rename(f"/backup/{folder}/manifest.json.part", f"/backup/{folder}/manifest.json")
    except BaseException:  # tar failed, disk full ...: no part file, no archive without its manifest
        discard(folder, [*(f"{safe(key)}.tar.gz" for key in args["volumes"]), "manifest.json"])
        raise
    return manifest


def discard(folder: str, names: list[str]) -> None:
    """Remove what a failed backup of one user wrote (whole or partial), then its folder if empty."""
    for name in names:
        for path in (f"/backup/{folder}/{name}", f"/backup/{folder}/{name}.part"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    with contextlib.suppress(OSError):
        os.rmdir(f"/backup/{folder}")


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def empty(folder: str) -> None:
    """Remove what a volume holds, not the mount point itself."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def restore(args: dict) -> dict:
    for a in args["archives"]:  # every archive checked before any volume is touched
        path = f"/backup/{a['path']}"
        if not os.path.isfile(path):
            return {"refused": f"archive {a['path']} is missing from the backup location"}
        found = sha256(path)
        if found != a["sha256"]:
            return {"refused": f"archive {a['path']} is corrupt: sha256 {found}, expected {a['sha256']}"}
    restored = []
    for a in args["archives"]:
        target = f"/dst/{safe(a['volume'])}"
        empty(target)
        tar = ["tar", "--numeric-owner", "--same-owner", "--xattrs", "-xpzf", f"/backup/{a['path']}", "-C", target]
        done = subprocess.run(tar, capture_output=True, text=True)
        if done.returncode != 0:
            raise failed(f"extracting {a['path']}", done.stderr)
        restored.append(a["volume"])
    return {"restored": restored, "setIdCleared": sum(clear_set_id(f"/dst/{safe(v)}") for v in restored)}


def clear_set_id(root: str) -> int:
    """Take setuid and setgid off every non-folder under `root` (symbolic links have none of
    their own: `find -perm` reads the link, not its target); how many were cleared."""
    find = ["find", root, "-xdev", "!", "-type", "d", "-perm", "/6000", "-print0"]
    found = [p for p in subprocess.run(find, capture_output=True, check=True).stdout.split(b"\0") if p]
    for path in found:
        os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o6000)
    return len(found)


def delete(args: dict) -> dict:
    removed = []
    for name in args["backups"]:
        path = f"/backup/{safe(name)}"
        if os.path.isdir(path):
            shutil.rmtree(path)
            removed.append(name)
    return {"removed": removed}


def stopped(signum: int, _frame: object) -> None:
    """SIGTERM (the deadline's `timeout`, or a deleted request): unwind, so a backup's
    `except BaseException` removes what it wrote."""
    raise SystemExit(f"stopped by signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, stopped)
    op, args = sys.argv[1], json.loads(sys.argv[2])
    os.umask(0o077)  # archives hold every user's files: readable by root only
    result = {"backup": backup, "restore": restore, "delete": delete}[op](args)
    print(json.dumps(result), flush=True)
    sys.exit(REFUSED if "refused" in result else 0)


if __name__ == "__main__":
    main()
