"""The program the rename helper container runs (`python3 -c <this file> JSON`).

Standard library and coreutils only (the backup helper's image), as root, with no network.
Mounts (`Mounts`): each old volume at /src/<key> (read-only) and /old/<key> (read-write),
its new volume at /dst/<key> (read-write) and /new/<key> (read-only).

`move` (all or nothing until every copy is verified, then forward only):
1. Copy: one key after another, the new volume is emptied (a resumed copy starts clean) and
   `cp -a` copies everything (owners, modes, times, links, hard links, xattrs, sparse files),
   while the old tree is checksummed beside it: every path with its type, mode, owner and
   group, a file's size and content sum, a link's target, all summed by sha256 (the sum
   and `cp` read the same files, so a cold file comes from the disk about once).
2. Verify: each copy's tree is checksummed the same way, beside the next copy. One that
   differs refuses (exit 3): nothing of the old volumes has been touched.
3. Commit: only when every copy is verified, a marker is written into each old volume
   (MARKER: the request's token and the checksum), synced, and then each old volume is
   emptied but for its marker, all at once. The engine's own volume removal afterwards has
   nothing left to delete (it removes volumes one at a time, at about 1 s per GB here).
A resumed helper meets the marker: that key's copy was verified, its original may be half
emptied, so it is never copied again. The copy is checksummed and must match the marker.
The marker counts only with the token the reconciler gave this request, never a file of
that name the user put in their home.

`survey`: which old volumes carry this request's marker (a failed rename can be undone only
while none does).

The content sum of a file under SMALL bytes is zlib's CRC-32, read in one call (a home has
thousands of small files, and a system call is dear on a virtual machine); of a larger one
the CRC of coreutils `cksum` (hardware-assisted: about 3 GB/s here against zlib's 1.4), or
zlib's where the image's `cksum` lacks `-z`. The check guards against a copy gone wrong
(a full disk, a killed helper, a bug), not an adversary; no one else can write these
volumes while the helper runs. sha256 of every byte, twice, costs 5x to 10x
the CPU (`benchmarks/rename.py --content both`). The last line of output is one JSON object:
exit 0 with the result, 3 when a copy differs, anything else a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

REFUSED = 3
CHUNK = 1 << 20
MARKER = ".jhds-rename-verified"
BATCH = 500  # files per `cksum` run (well inside the argument limit)
SMALL = 1 << 20  # a file under this is read in one call and summed here, a larger one by `cksum`


def has_cksum() -> bool:
    try:
        return subprocess.run(["cksum", "-z", "--", "/dev/null"], capture_output=True).returncode == 0
    except OSError:
        return False


def zlib_sums(root: str, files: list[str]) -> list[str]:
    sums = []
    for rel in files:
        value = 0
        with open(os.path.join(root, rel), "rb") as f:
            while chunk := f.read(CHUNK):
                value = zlib.crc32(chunk, value)
        sums.append(f"{value:08x}")
    return sums


def cksum_sums(root: str, files: list[str]) -> list[str]:
    """Each file's `cksum` CRC, in order (NUL-ended records, so any name is safe)."""
    sums: list[str] = []
    for i in range(0, len(files), BATCH):
        batch = [f"./{rel}" for rel in files[i : i + BATCH]]
        run = subprocess.run(["cksum", "-z", "--", *batch], cwd=root, capture_output=True, check=True)
        records = run.stdout.split(b"\0")[: len(batch)]
        sums += [r.split(b" ", 1)[0].decode() for r in records]
    return sums


def sha256_sums(root: str, files: list[str]) -> list[str]:
    sums = []
    for rel in files:
        with open(os.path.join(root, rel), "rb") as f:
            sums.append(hashlib.file_digest(f, "sha256").hexdigest())
    return sums


LARGE_SUMS = {"cksum": cksum_sums, "crc32": zlib_sums, "sha256": sha256_sums}


def small_sum(path: str, size: int) -> str:
    """zlib's CRC-32 of a small file in three system calls (open, read, close): on this
    kind of host a system call costs tens of microseconds, and a home has thousands of
    small files."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        data = os.read(fd, size + 1)  # one byte more: a file that grew since its lstat differs
    finally:
        os.close(fd)
    return f"{zlib.crc32(data):08x}"


def tree_digest(root: str, content: str) -> tuple[str, int, int]:
    """(sha256 of the tree's listing, entries, bytes of file content). A file's content is
    summed by `content`: "cksum" (coreutils' CRC for a file of SMALL bytes or more, zlib's
    CRC-32 below), "crc32" (zlib's for all) or "sha256"; which one a file gets depends only
    on its size, the same on both sides. Never taken of an old volume once it has this
    request's marker, so the marker is never part of a tree."""
    lines: list[bytes] = []
    large: list[tuple[int, str]] = []  # (index in lines, relative path) of files summed by LARGE_SUMS
    size, cut = 0, len(root) + 1
    st = os.lstat(root)  # the volume's own folder: its mode and owner are the lab's home's
    head = f". {stat.S_IMODE(st.st_mode):o} {st.st_uid} {st.st_gid}\n".encode()
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + names):
            path = os.path.join(folder, name)
            rel = path[cut:]
            st = os.lstat(path)
            line = f"{stat.S_IFMT(st.st_mode):o} {stat.S_IMODE(st.st_mode):o} {st.st_uid} {st.st_gid}"
            if stat.S_ISREG(st.st_mode):
                line += f" {st.st_size}"
                size += st.st_size
                if st.st_size < SMALL and content != "sha256":
                    line += " " + small_sum(path, st.st_size)
                else:
                    large.append((len(lines), rel))
            elif stat.S_ISLNK(st.st_mode):
                line += " " + os.readlink(path)
            lines.append(rel.encode(errors="surrogateescape") + b"\0" + line.encode(errors="surrogateescape"))
    sums = LARGE_SUMS[content](root, [rel for _, rel in large])
    for (index, _), summed in zip(large, sums, strict=True):
        lines[index] += f" {summed}".encode()
    digest = hashlib.sha256(head)
    for line in lines:
        digest.update(line + b"\n")
    return digest.hexdigest(), len(lines), size


def read_marker(src: str, token: str) -> dict | None:
    """This request's marker in an old volume, or None (none, or not this request's)."""
    path = os.path.join(src, MARKER)
    if not os.path.isfile(path) or os.path.islink(path):
        return None
    try:
        with open(path) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("token") == token else None


def write_marker(src: str, body: dict) -> None:
    """Written whole and synced before anything of the original is removed. Whatever of the
    user's own has the marker's names (copied already) is replaced, never followed."""
    path, temp = os.path.join(src, MARKER), os.path.join(src, MARKER + ".tmp")
    for name in (path, temp):
        if os.path.islink(name) or (os.path.lexists(name) and not os.path.isfile(name)):
            subprocess.run(["rm", "-rf", "--", name], check=True)
    if os.path.lexists(temp):
        os.unlink(temp)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(body, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    folder = os.open(src, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def empty(folder: str, keep: str = "") -> None:
    """Everything in `folder` removed but `keep` (rm -rf: the fastest remover in the image)."""
    entries = [e.path for e in os.scandir(folder) if e.name != keep]
    if entries:
        subprocess.run(["rm", "-rf", "--", *entries], check=True)


@dataclass(frozen=True)
class Mounts:
    """Where each volume is mounted: the old ones read-only for reading (a read-only mount
    never writes an access time: thousands of inode writes fewer) and read-write for the
    marker and the emptying; the new ones read-write for `cp` and read-only for the check."""

    src: str = "/src"
    old: str = "/old"
    dst: str = "/dst"
    new: str = "/new"


def move(keys: list[str], token: str, content: str = "cksum", at: Mounts = Mounts()) -> dict:
    if content == "cksum" and not has_cksum():
        content = "crc32"
    t0 = time.monotonic()
    resumed = {k: m for k in keys if (m := read_marker(f"{at.src}/{k}", token)) is not None}
    fresh = [k for k in keys if k not in resumed]
    with ThreadPoolExecutor(2 * len(keys) + 1) as pool:
        before, after = {}, {}
        for k in fresh:  # one volume at a time: the old tree's sum reads ahead of `cp`
            empty(f"{at.dst}/{k}")
            before[k] = pool.submit(tree_digest, f"{at.src}/{k}", content)
            cp = subprocess.run(["cp", "-a", f"{at.src}/{k}/.", f"{at.dst}/{k}/"], capture_output=True, text=True)
            if cp.returncode != 0:
                return {"failed": f"cp -a of {k} failed: {cp.stderr.strip()[-400:]}"}
            after[k] = pool.submit(tree_digest, f"{at.new}/{k}", content)  # beside the next copy
        for k, m in resumed.items():
            after[k] = pool.submit(tree_digest, f"{at.new}/{k}", m.get("content", content))
        copied = time.monotonic() - t0
        done = []
        for k in keys:
            new_sum, files, size = after[k].result()
            expected = resumed[k]["checksum"] if k in resumed else before[k].result()[0]
            if new_sum != expected:
                where = "its verified checksum" if k in resumed else "the original"
                return {
                    "refused": f"the copy of {k} differs from {where} (tree checksum {new_sum}, expected {expected})"
                }
            done.append({"volume": k, "files": files, "bytes": size, "checksum": new_sum, "resumed": k in resumed})
        verified = time.monotonic() - t0
        for d in done:  # every marker before any original is emptied
            if d["volume"] not in resumed:
                write_marker(f"{at.old}/{d['volume']}", {"token": token, "checksum": d["checksum"], "content": content})
        print(json.dumps({"verified": [d["volume"] for d in done]}), flush=True)
        for cleared in [pool.submit(empty, f"{at.old}/{k}", MARKER) for k in keys]:
            cleared.result()
    seconds = {"copy": copied, "verify": verified - copied, "clear": time.monotonic() - t0 - verified}
    return {"copied": done, "content": content, "seconds": {k: round(v, 2) for k, v in seconds.items()}}


def survey(keys: list[str], token: str, src: str = "/src") -> dict:
    return {"committed": [k for k in keys if read_marker(f"{src}/{k}", token) is not None]}


def main() -> None:
    args = json.loads(sys.argv[1])
    if args.get("op") == "survey":
        result = survey(args["volumes"], args["token"])
    else:
        result = move(args["volumes"], args["token"], args.get("content", "cksum"))
    print(json.dumps(result), flush=True)
    sys.exit(REFUSED if "refused" in result else 1 if "failed" in result else 0)


if __name__ == "__main__":
    main()
