"""The Docker proxy of `limited` access against the raw engine socket, in the same run:
`docker ps`, `docker run --rm IMAGE true` (targets: at most 1.3x the raw time) and a
`docker logs -f` stream of 100 MB (target: at least 0.8x the raw throughput).

The proxy is built directly (no hub) on a store of its own, as in
tests/integration/test_docker_proxy.py; the real `docker` CLI drives both sides, turn about.

    .venv/bin/python benchmarks/dockerproxy.py [--repeat 20] [--megabytes 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.docker_proxy import DockerProxy
from reconciler.docker_requests import Quota
from reconciler.store import Store
from vocabulary import naming

PLATFORM = "jhds-bench-dproxy"
IMAGE = "jupyterhub-ds/base:bookworm"
RAW = "unix:///var/run/docker.sock"
LINE = 1000  # bytes of one log line (with its newline)


def timed(host: str, *args: str, out: int | None = None) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(["docker", "-H", host, *args], stdout=out or subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {done.stderr.decode()[-400:]}")
    return elapsed


def compare(name: str, repeat: int, raw: Callable[[], float], proxied: Callable[[], float]) -> tuple[float, float]:
    """Medians, turn about (raw first, then the proxy), after one warm-up of each."""
    raw(), proxied()
    a, b = [], []
    for _ in range(repeat):
        a.append(raw())
        b.append(proxied())
    return statistics.median(a), statistics.median(b)


def cleanup(client: docker.DockerClient) -> None:
    for c in client.containers.list(all=True, filters={"label": f"{naming.LABEL_DOCKER_PLATFORM}={PLATFORM}"}):
        c.remove(force=True, v=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    client = docker.from_env()
    cleanup(client)
    folder = Path(tempfile.mkdtemp(prefix="jhds-bench-dproxy-"))
    store = Store(f"sqlite:///{folder / 'db.sqlite'}")
    proxy = DockerProxy(folder / "sockets", store, PLATFORM, "/var/run/docker.sock")
    proxy.start()
    try:
        sock = asyncio.run(proxy.open("bench", Quota(max_containers=50)))
        mine = f"unix://{sock}"
        # Some containers on the engine besides the user's: a listing is narrowed, not empty.
        for _ in range(5):
            timed(mine, "create", "--network", "none", IMAGE, "true")
        ps = compare("ps", args.repeat, lambda: timed(RAW, "ps", "-a"), lambda: timed(mine, "ps", "-a"))
        run = ("run", "--rm", "--network", "none", IMAGE, "true")
        runs = compare("run", args.repeat, lambda: timed(RAW, *run), lambda: timed(mine, *run))
        lines = args.megabytes * 2**20 // LINE
        script = f"yes $(printf '%0{LINE - 1}d' 0) | head -n {lines}"
        logs = timed(mine, "run", "--name", f"{PLATFORM}-logs", "--network", "none", IMAGE, "sh", "-c", script)
        assert logs is not None
        size = lines * LINE / 2**20

        def follow(host: str) -> Callable[[], float]:
            return lambda: timed(host, "logs", "-f", f"{PLATFORM}-logs", out=subprocess.DEVNULL)

        stream = compare("logs", 3, follow(RAW), follow(mine))
    finally:
        asyncio.run(proxy.shutdown())
        cleanup(client)
        store.close()
    print(f"Docker proxy against the raw socket (medians; {args.repeat} turns each, logs 3):")
    for label, (raw_s, proxy_s) in (("docker ps -a", ps), (f"docker run --rm {IMAGE} true", runs)):
        ratio = proxy_s / raw_s
        verdict = "ok" if ratio <= 1.3 else "over"
        print(f"  {label:<48} raw {raw_s * 1000:7.1f} ms  proxy {proxy_s * 1000:7.1f} ms  {ratio:4.2f}x  {verdict}")
    raw_rate, proxy_rate = size / stream[0], size / stream[1]
    ratio = proxy_rate / raw_rate
    verdict = "ok" if ratio >= 0.8 else "under"
    label = f"docker logs -f ({size:.0f} MB, {lines} lines)"
    print(f"  {label:<48} raw {raw_rate:7.1f} MB/s proxy {proxy_rate:7.1f} MB/s {ratio:4.2f}x  {verdict}")
    print("  targets: ps and run at most 1.3x the raw time; logs -f at least 0.8x the raw throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
