"""Backup benchmark: a 1 GB volume backed up by the platform's helper (the code path of a
VolumeBackup) against a plain `docker run ... tar czf` of the same volume, same run,
alternated; then the restore (sha256 check, empty, extract) against a plain `tar xzf`.

The volume holds half incompressible data (random) and half compressible text, in files
of 1-10 MB and many small files. Goal: the helper's throughput at least 0.9x plain tar's.

`--during-broadcast`: instead, the broadcast benchmark's delivery to 1,000 simulated labs
(`benchmarks/broadcast.py`, "ours") alone, then while four helpers back up four volumes each
holding a 2 GB sparse file (a few KB of data), started with the measurement; then the same
with the helper's tar without `--sparse` (the holes read as zeros and gzipped), and with the
four backups repeated as soon as each ends (a storm of helper starts), alternated. Prints
the figures and the ratios.

    .venv/bin/python benchmarks/backup.py [--repeat 3] [--mb 1024] [--during-broadcast]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.clients import backups
from reconciler.clients.backups import Helpers
from reconciler.clients.docker import Engine
from tests.harness import cleanup_docker
from vocabulary import naming
from vocabulary.settings import Settings, load_settings

PLATFORM = "jhds-bench-backup"
IMAGE = "jupyterhub-ds/base:bookworm"
SRC, DST, LOCATION = f"{PLATFORM}-src", f"{PLATFORM}-dst", f"{PLATFORM}-backups"

FILL = """
import os, random
mb = int(os.environ["MB"])
random.seed(1)
words = [("".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(random.randint(2, 9))))
         for _ in range(5000)]
os.makedirs("/v/random", exist_ok=True); os.makedirs("/v/text", exist_ok=True); os.makedirs("/v/small", exist_ok=True)
done, i = 0, 0
while done < mb // 2:
    size = random.randint(1, 10)
    with open(f"/v/random/{i}.bin", "wb") as f:
        f.write(os.urandom(size << 20))
    done += size; i += 1
done, i = 0, 0
while done < mb // 2 - 20:
    size = random.randint(1, 10)
    line = " ".join(random.choices(words, k=20000)).encode()
    with open(f"/v/text/{i}.txt", "wb") as f:
        while f.tell() < size << 20:
            f.write(line[: random.randint(1000, len(line))] + b"\\n")
    done += size; i += 1
for i in range(5000):
    with open(f"/v/small/{i}.py", "w") as f:
        f.write("# small file %d\\n" % i + " ".join(random.choices(words, k=500)))
"""


def run(client: docker.DockerClient, command: list[str], volumes: dict) -> float:
    t0 = time.perf_counter()
    client.containers.run(IMAGE, command, volumes=volumes, network_mode="none", user="0", remove=True)
    return time.perf_counter() - t0


def fill(client: docker.DockerClient, mb: int) -> int:
    labels = {naming.LABEL_PLATFORM: PLATFORM}
    for name in (SRC, LOCATION):
        client.volumes.create(name, labels=labels)
    client.containers.run(
        IMAGE, ["python3", "-c", FILL], environment={"MB": str(mb)}, volumes={SRC: {"bind": "/v", "mode": "rw"}},
        network_mode="none", remove=True,
    )  # fmt: skip
    out = client.containers.run(IMAGE, ["du", "-sb", "/v"], volumes={SRC: {"bind": "/v", "mode": "ro"}}, remove=True)
    return int(out.split()[0])


async def helper_backup(helpers: Helpers, i: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    manifest = await helpers.backup(f"bench-{i}", "bench", {"home": SRC})
    return time.perf_counter() - t0, manifest


async def helper_restore(helpers: Helpers, i: int, archive: dict) -> float:
    t0 = time.perf_counter()
    await helpers.restore(f"bench-{i}", [archive], {"home": DST})
    return time.perf_counter() - t0


SPARSE = "truncate -s 2G /v/sparse.img && printf data | dd of=/v/sparse.img bs=1 seek=1000000000 conv=notrunc"


def sparse_volumes(client: docker.DockerClient, n: int) -> dict[str, str]:
    """n volumes, each with one 2 GB sparse file; {key: volume name}."""
    names = {f"v{i}": f"{PLATFORM}-sparse-{i}" for i in range(n)}
    for name in [*names.values(), LOCATION]:
        client.volumes.create(name, labels={naming.LABEL_PLATFORM: PLATFORM})
    for name in names.values():
        run(client, ["sh", "-c", SPARSE], {name: {"bind": "/v", "mode": "rw"}})
    return names


class Backups:
    """Four helpers backing up one sparse volume each (once, or again and again), in a thread."""

    def __init__(self, settings: Settings, volumes: dict[str, str], again: bool):
        self.volumes, self.again, self.stop, self.times = volumes, again, threading.Event(), []  # type: ignore[var-annotated]

        async def wanted() -> bool:  # as a deleted request stops its helper: within about a second
            return not self.stop.is_set()

        self.helpers = Helpers(Engine(), settings, backups.Job("VolumeBackup", "bench", None, wanted))
        self.thread = threading.Thread(target=lambda: asyncio.run(self._all()), daemon=True)

    async def _one(self, key: str, volume: str) -> None:
        i = 0
        while not self.stop.is_set() and (self.again or i == 0):
            t0 = time.perf_counter()
            try:
                await self.helpers.backup(f"sparse-{key}-{i}", f"u{key}", {"home": volume})
            except backups.HelperFailed:
                if self.stop.is_set():
                    return  # stopped when the measurement ended
                raise
            self.times.append(time.perf_counter() - t0)
            i += 1

    async def _all(self) -> None:
        await asyncio.gather(*(self._one(k, v) for k, v in self.volumes.items()))

    def __enter__(self) -> Backups:
        self.thread.start()  # the measurement starts with them
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


MODES = {  # name: (what, tar with --sparse, again and again)
    "sparse": ("4 backups, tar --sparse (now)", True, False),
    "no-sparse": ("4 backups, tar without --sparse", False, False),
    "churn": ("4 backups again and again, --sparse", True, True),
}


def during_broadcast(client: docker.DockerClient, repeat: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import broadcast  # the broadcast benchmark's simulated labs and figures

    settings = load_settings(
        {"PLATFORM_ID": PLATFORM, "BACKUP_LOCATION": f"volume:{LOCATION}", "BACKUP_CONCURRENCY": "4"}
    )
    volumes = sparse_volumes(client, 4)
    sparse_script, plain_script = backups.SCRIPT, backups.SCRIPT.replace('"--sparse", ', "")
    rows: dict[str, list[dict[str, Any]]] = {"alone": [], **{m: [] for m in MODES}}
    done: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(repeat):
        rows["alone"].append(broadcast.figures(broadcast.measure("ours", 10.0)))
        for mode, (_what, sparse, again) in MODES.items():
            backups.SCRIPT = sparse_script if sparse else plain_script
            with Backups(settings, volumes, again) as running:
                rows[mode].append(broadcast.figures(broadcast.measure("ours", 10.0)))
            done[mode] += running.times
    backups.SCRIPT = sparse_script

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[mode])

    print(f"Broadcast to 1,000 simulated labs (median of {repeat}), alone and while 4 helpers back up 2 GB sparse")
    print("files (started with the measurement; 'again and again': a new backup as soon as one ends)")
    print(f"{'':38} {'p50 ms':>8} {'p99 ms':>8} {'last s':>8} {'delivered':>10} {'ratio p50':>10}")
    for mode, what in (("alone", "alone"), *((m, w[0]) for m, w in MODES.items())):
        print(f"{what:38} {med(mode, 'p50') * 1e3:8.1f} {med(mode, 'p99') * 1e3:8.1f} {med(mode, 'last'):8.2f} "
              f"{med(mode, 'delivered'):10.0f} {med(mode, 'p50') / med('alone', 'p50'):9.2f}x")  # fmt: skip
    for mode in MODES:
        times = done[mode]
        took = f"{statistics.median(times):.2f} s each (median of {len(times)})" if times else "none finished"
        print(f"backups finished within the measurement, {mode}: {took}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (the host is shared)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--during-broadcast", action="store_true", help="the broadcast figures while 4 backups run")
    args = parser.parse_args()
    client = docker.from_env()
    if args.during_broadcast:
        cleanup_docker(client, PLATFORM)
        try:
            during_broadcast(client, args.repeat)
        finally:
            cleanup_docker(client, PLATFORM)
        return
    cleanup_docker(client, PLATFORM)
    settings = load_settings({"PLATFORM_ID": PLATFORM, "BACKUP_LOCATION": f"volume:{LOCATION}"})
    helpers = Helpers(Engine(), settings)
    try:
        t0 = time.perf_counter()
        size = fill(client, args.mb)
        print(f"volume: {size / 1e9:.2f} GB written in {time.perf_counter() - t0:.1f} s")
        loc = {SRC: {"bind": "/src", "mode": "ro"}, LOCATION: {"bind": "/backup", "mode": "rw"}}
        plain, ours, plain_restore, our_restore = [], [], [], []
        for i in range(args.repeat):
            plain.append(run(client, ["tar", "czf", f"/backup/plain-{i}.tar.gz", "-C", "/src", "."], loc))
            seconds, manifest = asyncio.run(helper_backup(helpers, i))
            ours.append(seconds)
            archive = manifest["archives"][0]
            client.volumes.create(DST, labels={naming.LABEL_PLATFORM: PLATFORM})
            dst = {DST: {"bind": "/dst", "mode": "rw"}, LOCATION: {"bind": "/backup", "mode": "ro"}}
            plain_restore.append(run(client, ["tar", "xzf", f"/backup/plain-{i}.tar.gz", "-C", "/dst"], dst))
            our_restore.append(asyncio.run(helper_restore(helpers, i, archive)))
            client.volumes.get(DST).remove(force=True)
            print(
                f"run {i + 1}: plain tar czf {plain[-1]:.2f} s, helper {ours[-1]:.2f} s "
                f"({archive['bytes'] / 1e6:.0f} MB archive, {archive['files']} entries); "
                f"restore: plain tar xzf {plain_restore[-1]:.2f} s, helper {our_restore[-1]:.2f} s"
            )
        p, o = statistics.median(plain), statistics.median(ours)
        rates = f"plain {size / p / 1e6:.0f} MB/s, helper {size / o / 1e6:.0f} MB/s"
        print(f"backup throughput (median): {rates}: {p / o:.2f}x (goal >= 0.9x)")
        pr, orr = statistics.median(plain_restore), statistics.median(our_restore)
        print(f"restore of {size / 1e9:.2f} GB (median): helper {orr:.2f} s (sha256 check, empty, extract), "
              f"plain tar xzf {pr:.2f} s")  # fmt: skip
    finally:
        cleanup_docker(client, PLATFORM)


if __name__ == "__main__":
    main()
