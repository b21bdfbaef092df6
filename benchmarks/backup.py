"""Backup benchmark: a 1 GB volume backed up by the platform's helper (the code path of a
VolumeBackup) against a plain `docker run ... tar czf` of the same volume, same run,
alternated; then the restore (sha256 check, empty, extract) against a plain `tar xzf`.

The volume holds half incompressible data (random) and half compressible text, in files
of 1-10 MB and many small files. Goal: the helper's throughput at least 0.9x plain tar's.

    .venv/bin/python benchmarks/backup.py [--repeat 3] [--mb 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.clients.backups import Helpers
from reconciler.clients.docker import Engine
from tests.harness import cleanup_docker
from vocabulary import naming
from vocabulary.settings import load_settings

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mb", type=int, default=1024)
    args = parser.parse_args()
    client = docker.from_env()
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
