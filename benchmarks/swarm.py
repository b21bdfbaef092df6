"""Swarm benchmark: the same platform on the two-node test swarm and on plain Docker, same run.

For each backend a hub (`tests.harness.Hub`) with the minimal lab:
1. spawn to ready of one server (request -> the hub says ready), `--repeat` times, median;
2. `--labs` servers running at once, then a broadcast to all of them: submit -> Completed,
   median of `--repeat` broadcasts.
The ratio is swarm / docker. The swarm is started by `scripts/swarm.sh up` if it is not
running (and left running; `make swarm-down` removes it).

    .venv/bin/python benchmarks/swarm.py [--repeat 3] [--labs 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import Hub, cleanup_docker, cleanup_swarm, test_swarm

PLATFORMS = {"docker": "jhds-bench-swd", "swarm": "jhds-bench-sws"}


def broadcast_seconds(hub: Hub, n: int) -> float:
    t0 = time.perf_counter()
    data = hub.broadcast("Benchmark: hello", interval=0.05)
    seconds = time.perf_counter() - t0
    delivered = sum(1 for d in data["deliveries"] if d["outcome"] == "delivered")
    assert delivered == n, data
    return seconds


def measure(backend: str, env: dict[str, str], repeat: int, labs: int) -> tuple[list[float], list[float]]:
    hub = Hub(
        state_dir=Path(tempfile.mkdtemp(prefix=f"jhds-bench-{backend}-")), platform=PLATFORMS[backend], extra_env=env
    )
    users = [f"bench-{backend[0]}{i}" for i in range(labs)]
    try:
        assert hub.up().returncode == 0, f"make up failed ({backend})"
        for user in users:
            hub.create_user(user)
        spawns = []
        for _ in range(repeat):
            spawns.append(hub.start_server(users[0]))
            hub.stop_server(users[0])
        for user in users:
            hub.start_server(user)
        broadcasts = [broadcast_seconds(hub, labs) for _ in range(repeat)]
        for user in users:
            hub.stop_server(user)
        return spawns, broadcasts
    finally:
        hub.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--labs", type=int, default=4, help="labs running during the broadcasts (default 4)")
    args = parser.parse_args()

    swarm = test_swarm()
    results = {}
    try:
        results["docker"] = measure("docker", {}, args.repeat, args.labs)
        results["swarm"] = measure(
            "swarm", {"PLATFORM_BACKEND": "swarm", "DOCKER_HOST": swarm.manager_host}, args.repeat, args.labs
        )
    finally:
        cleanup_docker(docker.from_env(), PLATFORMS["docker"])
        cleanup_swarm(PLATFORMS["swarm"])

    (d_spawn, d_bc), (s_spawn, s_bc) = results["docker"], results["swarm"]
    md, ms = statistics.median(d_spawn), statistics.median(s_spawn)
    bd, bs = statistics.median(d_bc), statistics.median(s_bc)
    print(f"spawn -> ready, plain Docker (median of {len(d_spawn)}): {md:6.2f} s  (baseline)")
    print(f"spawn -> ready, two-node Swarm (median of {len(s_spawn)}): {ms:6.2f} s")
    print(f"  ratio swarm / docker:                       {ms / md:6.2f}x")
    print(f"broadcast to {args.labs} labs, plain Docker (median):     {bd:6.2f} s  (baseline)")
    print(f"broadcast to {args.labs} labs, two-node Swarm (median):   {bs:6.2f} s")
    print(f"  ratio swarm / docker:                       {bs / bd:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
