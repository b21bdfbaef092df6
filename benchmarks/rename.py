"""Rename benchmark: a user with 1 GB across three volumes renamed by the UserRename controller
(the code path of `hubctl rename-user`: the checks, the holds, one helper copying every
volume with `cp -a` and checking each copy by a checksum of the whole tree on both sides, the
old volumes removed, the per-user rows moved) against a plain `docker run ... cp -a` of
the same three volumes into fresh ones (the baseline), same run, alternated.

Real engine and store (SQLite in a temporary folder); the hub is a stand-in answering the
rename's three REST calls (what it costs a real hub is milliseconds). Goal: under 2x the
baseline. Each repetition renames the user back and forth, so every rename copies to new
volumes as the first one does. Before each timed run the disk is flushed and left to go
quiet (`settle`): neither side pays for writing out or discarding what the other wrote.

    .venv/bin/python benchmarks/rename.py [--repeat 3] [--mb 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.api import parse_resource
from reconciler.clients import volume_copy
from reconciler.clients.docker import Engine
from reconciler.context import Context
from reconciler.controllers import userrename
from reconciler.store import Store
from tests.harness import cleanup_docker
from vocabulary import naming
from vocabulary.api import API_VERSION
from vocabulary.settings import load_settings

PLATFORM = "jhds-bench-rename"
IMAGE = "jupyterhub-ds/base:bookworm"
TEMPLATE = f"{PLATFORM}-{{username}}_{{volume}}"
SHARES = {"home": 0.5, "workspace": 0.375, "cache": 0.125}  # of the megabytes asked for

FILL = """
import os, random
mb = int(os.environ["MB"])
random.seed(int(os.environ["SEED"]))
os.makedirs("/v/data", exist_ok=True); os.makedirs("/v/small", exist_ok=True)
done, i = 0, 0
while done < mb - 10:
    size = random.randint(1, 10)
    with open(f"/v/data/{i}.bin", "wb") as f:
        f.write(os.urandom(size << 20))
    done += size; i += 1
for i in range(2000):
    with open(f"/v/small/{i}.py", "w") as f:
        f.write("# small file %d\\n" % i * 50)
os.symlink("data/0.bin", "/v/link")
"""


class StandInHub:
    """The hub's side of a rename: who exists, and JupyterHub's rename."""

    def __init__(self, users: set[str]) -> None:
        self.users = users

    async def get_user(self, name: str) -> dict[str, Any] | None:
        return {"name": name, "servers": {}} if name in self.users else None

    async def user_exists(self, name: str) -> bool:
        return name in self.users

    async def rename_user(self, old: str, new: str) -> dict[str, Any]:
        self.users = (self.users - {old}) | {new}
        return {"name": new}


def fill(client: docker.DockerClient, user: str, mb: int) -> int:
    total = 0
    for i, (key, share) in enumerate(SHARES.items()):
        name = naming.volume_name(TEMPLATE, user, key)
        client.volumes.create(name, labels=naming.object_labels(PLATFORM, user) | {naming.LABEL_VOLUME: key})
        env = {"MB": str(int(mb * share)), "SEED": str(i)}
        volumes = {name: {"bind": "/v", "mode": "rw"}}
        client.containers.run(
            IMAGE, ["python3", "-c", FILL], environment=env, volumes=volumes, network_mode="none", remove=True
        )
        out = client.containers.run(IMAGE, ["du", "-sb", "/v"], volumes=volumes, remove=True)
        total += int(out.split()[0])
    return total


DISK_STAT = ""  # /sys/dev/block/MAJ:MIN/stat of the engine's data folder, when this host has it


def settle(quiet_for: float = 1.0, at_most: float = 60.0) -> float:
    """Each timed run starts on a quiet disk: nothing waiting to be written, and nothing
    still being discarded. This machine's filesystem is mounted with `discard`: deleting a
    gigabyte written moments before (each run removes what it copied) keeps the disk busy
    for seconds after `sync`, and would slow whichever run comes next. Waits until the
    disk has had no request in flight and no busy time for `quiet_for` seconds; returns
    the seconds waited."""
    t0 = time.monotonic()
    os.sync()
    if not DISK_STAT:
        time.sleep(quiet_for)
        return time.monotonic() - t0
    last, since = None, time.monotonic()
    while time.monotonic() - t0 < at_most:
        fields = Path(DISK_STAT).read_text().split()
        now = (fields[8], fields[9])  # requests in flight, milliseconds busy
        if now != last or now[0] != "0":
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            break
        time.sleep(0.1)
    return time.monotonic() - t0


def disk_stat(client: docker.DockerClient) -> str:
    try:
        device = os.stat(client.info()["DockerRootDir"]).st_dev
    except OSError:  # an engine elsewhere: a fixed pause instead
        return ""
    path = f"/sys/dev/block/{os.major(device)}:{os.minor(device)}/stat"
    return path if os.path.exists(path) else ""


def baseline(client: docker.DockerClient, user: str, run: int) -> float:
    """`cp -a` of the three volumes into three fresh ones, in one container. The copies stay
    until the end (removed with the platform's label): removing a gigabyte of files just
    written slows the next run's file creation for seconds on this disk, and the rename must
    not pay for the baseline's cleanup."""
    volumes = {}
    for key in SHARES:
        target = f"{PLATFORM}-baseline-{run}-{key}"
        client.volumes.create(target, labels={naming.LABEL_PLATFORM: PLATFORM})
        volumes[naming.volume_name(TEMPLATE, user, key)] = {"bind": f"/src/{key}", "mode": "ro"}
        volumes[target] = {"bind": f"/dst/{key}", "mode": "rw"}
    script = " && ".join(f"cp -a /src/{key}/. /dst/{key}/" for key in SHARES)
    settle()
    t0 = time.perf_counter()
    client.containers.run(IMAGE, ["sh", "-c", script], volumes=volumes, network_mode="none", user="0", remove=True)
    return time.perf_counter() - t0


async def rename(ctx: Context, old: str, new: str, i: int) -> tuple[float, dict[str, Any]]:
    name = f"bench-{i}-{old}"
    doc = {
        "apiVersion": API_VERSION,
        "kind": "UserRename",
        "metadata": {"name": name},
        "spec": {"user": old, "newName": new},
    }
    ctx.store.apply([parse_resource(doc)], "cli")
    obj = ctx.store.get("UserRename", name)
    assert obj is not None
    settle()
    t0 = time.perf_counter()
    result = await userrename.reconcile(obj, ctx)
    seconds = time.perf_counter() - t0
    status = result.status.dump()
    assert status["phase"] == "Succeeded", status
    copied = [e.message for e in ctx.store.events("UserRename", name) if e.reason == "VolumesCopied"]
    status["helper"] = copied[0].rsplit("; ", 1)[-1] if copied else ""
    return seconds, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument(
        "--content", choices=["sha256", "cksum", "crc32", "both"], default="cksum", help="a file's sum in the check"
    )
    args = parser.parse_args()
    modes = ["sha256", "cksum"] if args.content == "both" else [args.content]
    client = docker.from_env()
    cleanup_docker(client, PLATFORM)
    global DISK_STAT
    DISK_STAT = disk_stat(client)
    names = ["bench-ann", "bench-anna"]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/hub.sqlite")
        env = {"PLATFORM_ID": PLATFORM, "USER_VOLUME_NAME_TEMPLATE": TEMPLATE, "JUPYTERHUB_STATE_DIR": tmp}
        ctx = Context(store=store, hub=StandInHub({names[0]}), settings=load_settings(env), engine=Engine())  # type: ignore[arg-type]
        try:
            t0 = time.perf_counter()
            size = fill(client, names[0], args.mb)
            print(f"volumes: {size / 1e9:.2f} GB in 3 volumes written in {time.perf_counter() - t0:.1f} s")
            plain: list[float] = []
            ours: dict[str, list[float]] = {m: [] for m in modes}
            n = 0
            for i in range(args.repeat):
                plain.append(baseline(client, names[n % 2], i))  # turn about with the renames
                for mode in modes:
                    volume_copy.CONTENT_SUM = mode
                    old, new = names[n % 2], names[(n + 1) % 2]
                    seconds, status = asyncio.run(rename(ctx, old, new, n))
                    ours[mode].append(seconds)
                    n += 1
                    files = sum(v["files"] for v in status["volumes"])
                    print(f"run {i + 1}: plain cp -a {plain[-1]:.2f} s, rename ({mode}) {old} -> {new} {seconds:.2f} s "
                          f"({files} entries verified; helper: {status['helper']})")  # fmt: skip
            p = statistics.median(plain)
            for mode in modes:
                o = statistics.median(ours[mode])
                print(f"median of {args.repeat}: plain docker run cp -a {p:.2f} s, rename ({mode}) {o:.2f} s: "
                      f"{o / p:.2f}x (goal < 2x)")  # fmt: skip
            load = os.getloadavg()[0]
            print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load:.1f} on {os.cpu_count()} CPUs (shared)")
        finally:
            store.close()
            cleanup_docker(client, PLATFORM)


if __name__ == "__main__":
    main()
