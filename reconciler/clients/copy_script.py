"""The program the rename helper container runs (`python3 -c <this file> JSON`).

Standard library and coreutils only (the backup helper's image), as root, with no network.
Mounts: each old volume at /src/<key> (read-only), its new volume at /dst/<key>. For each
key: the new volume is emptied (a resumed copy starts clean), `cp -a` copies everything
(owners, modes, times, links, hard links, xattrs, sparse files), and both trees are
checksummed in two processes beside it: every path with its type, mode, owner and group, a
file's size and content (CRC-32, or sha256 if asked), a link's target, all summed by sha256.
CRC-32 because the check is against a copy gone wrong (a full disk, a helper killed, a bug),
not an adversary: no one else can write these volumes while the helper runs, and sha256 of
every byte twice costs 2x to 5x the CPU (`benchmarks/rename.py --content both`). It prints
one JSON object on its last line: exit 0 and the checksums when every tree is the same on
both sides, 3 when one is not (nothing is removed then), anything else a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor

REFUSED = 3
CHUNK = 1 << 20


def crc32(f: object) -> str:
    value = 0
    while chunk := f.read(CHUNK):  # type: ignore[attr-defined]
        value = zlib.crc32(chunk, value)
    return f"{value:08x}"


def tree_digest(root: str, content: str = "crc32") -> tuple[str, int, int]:
    """(sha256 of the tree's listing, entries, bytes of file content); a file's content is
    summed by `content` (sha256, or crc32)."""
    digest, entries, size = hashlib.sha256(), 0, 0
    st = os.lstat(root)  # the volume's own folder: its mode and owner are the lab's home's
    digest.update(f". {stat.S_IMODE(st.st_mode):o} {st.st_uid} {st.st_gid}\n".encode())
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root).encode(errors="surrogateescape")
            head = f"{stat.S_IFMT(st.st_mode):o} {stat.S_IMODE(st.st_mode):o} {st.st_uid} {st.st_gid}"
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    summed = hashlib.file_digest(f, "sha256").hexdigest() if content == "sha256" else crc32(f)
                head += f" {st.st_size} {summed}"
                size += st.st_size
            elif stat.S_ISLNK(st.st_mode):
                head += " " + os.readlink(path)
            digest.update(rel + b"\0" + head.encode(errors="surrogateescape") + b"\n")
            entries += 1
    return digest.hexdigest(), entries, size


def empty(folder: str) -> None:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def copy(keys: list[str], content: str = "crc32") -> dict:
    """Each old tree's checksum is taken while `cp -a` copies it (both read the same pages),
    each copy's while the next volume is copied: about the time of the copies, plus one
    checksum of the last volume."""
    done, t0 = [], time.monotonic()
    with ProcessPoolExecutor(2) as pool:
        sums = {}
        for key in keys:
            src, dst = f"/src/{key}", f"/dst/{key}"
            empty(dst)
            old = pool.submit(tree_digest, src, content)
            run = subprocess.run(["cp", "-a", f"{src}/.", f"{dst}/"], capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"cp -a of {key} failed: {run.stderr.strip()[-400:]}")
            sums[key] = (old, pool.submit(tree_digest, dst, content))
        copied = time.monotonic() - t0
        for key, (old, new) in sums.items():
            (a, files, size), (b, _, _) = old.result(), new.result()
            if a != b:
                return {"refused": f"the copy of {key} differs from the original (tree checksum {b}, expected {a})"}
            done.append({"volume": key, "files": files, "bytes": size, "checksum": a})
    return {"copied": done, "seconds": {"copy": round(copied, 2), "total": round(time.monotonic() - t0, 2)}}


def main() -> None:
    args = json.loads(sys.argv[1])
    result = copy(args["volumes"], args.get("content", "crc32"))
    print(json.dumps(result), flush=True)
    sys.exit(REFUSED if "refused" in result else 0)


if __name__ == "__main__":
    main()
