"""Spawn benchmark: start request to "ready", for 1 server and for 10 at once; idle memory.

Baseline, measured in the same run: the same lab image started with a raw `docker run`
(JupyterLab without the hub) until its HTTP port answers. The ratio is platform / raw.
Also times a warm `make up` (everything cached, hub stopped before).

    .venv/bin/python benchmarks/spawn.py [--concurrent 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import Hub, cleanup_docker, free_port
from vocabulary import naming

PLATFORM = "jhds-bench"
IMAGE = "jupyterhub-ds/lab:minimal"


def raw_docker_start(client: docker.DockerClient) -> float:
    """Seconds from `docker run` of the lab image to its HTTP port answering."""
    port = free_port()
    t0 = time.perf_counter()
    container = client.containers.run(
        IMAGE,
        ["jupyter", "lab", "--ip=127.0.0.1", f"--port={port}", "--no-browser", "--IdentityProvider.token=''"],
        detach=True,
        network_mode="host",
        labels={naming.LABEL_PLATFORM: PLATFORM},
    )
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/status", timeout=1).status_code < 500:
                    return time.perf_counter() - t0
            except requests.ConnectionError:
                pass
            if time.perf_counter() - t0 > 120:
                raise RuntimeError("raw lab did not answer within 120 s")
            time.sleep(0.05)
    finally:
        container.remove(force=True)


def idle_memory_mib(client: docker.DockerClient, name: str, settle: float = 10) -> float:
    time.sleep(settle)  # let the lab finish starting up
    stats = client.containers.get(name).stats(stream=False)
    mem = stats["memory_stats"]
    inactive = mem.get("stats", {}).get("inactive_file", 0)
    return (mem["usage"] - inactive) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=10, help="servers started at once (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="single-spawn repetitions (default 3)")
    args = parser.parse_args()

    client = docker.from_env()
    cleanup_docker(client, PLATFORM)
    hub = Hub(state_dir=Path(tempfile.mkdtemp(prefix="jhds-bench-")), platform=PLATFORM)
    try:
        assert hub.up().returncode == 0, "make up failed"
        hub.down()
        t0 = time.perf_counter()
        assert hub.up().returncode == 0, "make up failed"
        warm_up = time.perf_counter() - t0

        raw = [raw_docker_start(client) for _ in range(args.repeat)]
        hub.create_user("bench0")
        single = []
        for _ in range(args.repeat):
            single.append(hub.start_server("bench0"))
            hub.stop_server("bench0")
        hub.start_server("bench0")
        memory = idle_memory_mib(client, hub.container_name("bench0"))
        hub.stop_server("bench0")

        users = [f"bench{i}" for i in range(1, args.concurrent + 1)]
        for user in users:
            hub.create_user(user)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(users)) as pool:
            each = list(pool.map(lambda u: hub.start_server(u, timeout=300), users))
        together = time.perf_counter() - t0
        for user in users:
            hub.stop_server(user)
    finally:
        hub.down()
        cleanup_docker(client, PLATFORM)

    raw_median, single_median = statistics.median(raw), statistics.median(single)
    print(f"warm `make up` (all cached):            {warm_up:6.2f} s")
    print(f"raw docker run -> lab answers (median): {raw_median:6.2f} s  (baseline, n={len(raw)})")
    print(f"1 server: request -> ready (median):    {single_median:6.2f} s  (n={len(single)})")
    print(f"  ratio platform / raw:                 {single_median / raw_median:6.2f}x")
    print(f"{len(users)} servers at once: all ready after: {together:6.2f} s")
    print(f"  per server: median {statistics.median(each):.2f} s, max {max(each):.2f} s")
    print(f"  ratio all-ready / ({len(users)} x raw):     {together / (len(users) * raw_median):6.2f}x")
    print(f"idle lab container memory:              {memory:6.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
