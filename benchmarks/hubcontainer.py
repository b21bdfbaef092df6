"""The hub in its container (`make deploy`) against the hub on the host (`make up`).

Figures, each the median of --repeat runs, everything cached (images built, project
installed), on free ports with bench labels:
- start to ready: the command until the hub's /hub/health (through its proxy) and the
  reconciler's /health both answer 200. `make up` (scripts/up.sh) is the baseline; for the
  container: `make deploy` (scripts/deploy.sh: compose up, then Docker's health check), a
  bare `docker compose up -d` of a removed container, and `docker compose restart`.
- idle memory, 15 s after ready with no user: the resident memory of the hub's processes
  (JupyterHub, configurable-http-proxy, the reconciler) for both, and the container's
  cgroup figure (what `docker stats` shows).

    .venv/bin/python benchmarks/hubcontainer.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import PASSWORD, Hub, cleanup_docker, free_port
from tests.integration.test_compose import compose_command

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = "jhds-bench-compose"  # jhds-bench*: other test platforms allow its socket
CONTAINER = f"{PLATFORM}-hub"
HOST_PLATFORM = "jhds-bench-host"
IDLE_SECONDS = 15


def ready(hub: Hub) -> bool:
    try:
        return (
            requests.get(f"{hub.url}hub/health", timeout=1).status_code == 200
            and requests.get(f"{hub.reconciler_url}health", timeout=1).status_code == 200
        )
    except requests.RequestException:
        return False


def wait_ready(hub: Hub, t0: float, timeout: float = 180) -> float:
    while time.perf_counter() - t0 < timeout:
        if ready(hub):
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise RuntimeError(f"not ready within {timeout} s")


def tree_rss_mib(root_pid: int) -> float:
    """Resident memory of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def container_memory(client: docker.DockerClient) -> tuple[float, float]:
    """(resident memory of the container's processes, its cgroup usage without page cache)."""
    container = client.containers.get(CONTAINER)
    pid = container.attrs["State"]["Pid"]  # docker-init (init: true), the parent of the rest
    stats = container.stats(stream=False)["memory_stats"]
    cache = stats.get("stats", {}).get("inactive_file", stats.get("stats", {}).get("total_inactive_file", 0))
    return tree_rss_mib(pid), (stats["usage"] - cache) / 2**20


def bench_env(hub: Hub, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "DOCKER_", "COMPOSE_"))}
    env.update(
        {
            "JUPYTERHUB_STATE_DIR": str(state),
            "JUPYTERHUB_PORT": str(hub.port),
            "JUPYTERHUB_HUB_PORT": str(free_port()),
            "JUPYTERHUB_PROXY_API_PORT": str(free_port()),
            "RECONCILER_PORT": str(hub.reconciler_port),
            "JUPYTERHUB_ADMIN_PASSWORD": PASSWORD,
            "PLATFORM_ID": PLATFORM,
            "DOCKER_CONTAINER_PREFIX": PLATFORM,
            "USER_VOLUME_NAME_TEMPLATE": f"{PLATFORM}-{{username}}_{{volume}}",
            "HUB_AUTOMATION_TOKEN": hub.token,
            "ENGINE_ACCESS_ALLOWED": "jhds-test*,jhds-bench*",
            # Report only: other test platforms' escalation tests judge their own containers.
            "PRIVILEGED_DRIFT_POLICY": "report",
            "MANIFESTS_DIR": str(state / "manifests"),
            "COMPOSE_PROJECT_NAME": PLATFORM,
            "HUB_CONTAINER_NAME": CONTAINER,
            "HUB_DATA_VOLUME": f"{PLATFORM}-data",
            "SHARED_VOLUME_NAME": f"{PLATFORM}-shared",
            "HUB_HEALTH_INTERVAL": "1s",
            "DEPLOY_ENV_FILE": str(state / "deploy.env"),
            "COMPOSE_FILE": f"{ROOT}/compose.yml:{ROOT}/compose.local.yml",
        }
    )
    return env


def run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def measure_container(client: docker.DockerClient, repeat: int) -> dict[str, list[float]]:
    state = Path(tempfile.mkdtemp(prefix="jhds-bench-compose-"))
    (state / "manifests").mkdir()
    hub = Hub(state_dir=state, platform=PLATFORM, token=secrets.token_hex(32))
    env = bench_env(hub, state)
    compose = [*compose_command(), "--project-directory", str(ROOT)]
    figures: dict[str, list[float]] = {"deploy": [], "up": [], "restart": [], "rss": [], "cgroup": []}
    try:
        run([str(ROOT / "scripts/hub-image.sh")], {k: v for k, v in env.items() if k != "JUPYTERHUB_STATE_DIR"})
        run([*compose, "down", "-v"], env)
        run([str(ROOT / "scripts/deploy.sh")], env)  # first start: the database is created
        run([str(ROOT / "scripts/undeploy.sh")], env)
        for _ in range(repeat):
            t0 = time.perf_counter()
            run([str(ROOT / "scripts/deploy.sh")], env)
            figures["deploy"].append(wait_ready(hub, t0))
            time.sleep(IDLE_SECONDS)
            rss, cgroup = container_memory(client)
            figures["rss"].append(rss)
            figures["cgroup"].append(cgroup)
            t0 = time.perf_counter()
            run([*compose, "restart", "jupyterhub"], env)
            figures["restart"].append(wait_ready(hub, t0))
            run([*compose, "rm", "-sf", "jupyterhub"], env)  # the container, not its volume
            t0 = time.perf_counter()
            run([*compose, "up", "-d", "jupyterhub"], env)
            figures["up"].append(wait_ready(hub, t0))
            run([str(ROOT / "scripts/undeploy.sh")], env)
    finally:
        run([*compose, "down", "-v", "--timeout", "10"], env)
        cleanup_docker(client, PLATFORM)
    return figures


def measure_host(client: docker.DockerClient, repeat: int) -> dict[str, list[float]]:
    state = Path(tempfile.mkdtemp(prefix="jhds-bench-host-"))
    hub = Hub(state_dir=state, platform=HOST_PLATFORM)
    figures: dict[str, list[float]] = {"make": [], "up": [], "rss": []}
    cleanup_docker(client, HOST_PLATFORM)
    try:
        assert hub.up().returncode == 0, "make up failed"  # first start: the database is created
        hub.down()
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = hub.up()
            assert result.returncode == 0, f"make up failed:\n{result.stderr}"
            figures["make"].append(wait_ready(hub, t0))
            time.sleep(IDLE_SECONDS)
            figures["rss"].append(tree_rss_mib(int((state / "jupyterhub.pid").read_text())))
            hub.down()
            # The bare start: JupyterHub launched as up.sh launches it, nothing checked before.
            env = {**hub.env, "PATH": f"{ROOT}/.venv/bin:{ROOT}/.venv/node/bin:{os.environ['PATH']}"}
            t0 = time.perf_counter()
            process = subprocess.Popen(
                [f"{ROOT}/.venv/bin/jupyterhub", "-f", f"{ROOT}/hub_config/jupyterhub_config.py"],
                cwd=state,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                figures["up"].append(wait_ready(hub, t0))
            finally:
                process.terminate()
                process.wait(timeout=60)
    finally:
        hub.down()
        cleanup_docker(client, HOST_PLATFORM)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each figure (default 3)")
    args = parser.parse_args()
    client = docker.from_env()
    host = measure_host(client, args.repeat)
    box = measure_container(client, args.repeat)
    med = statistics.median
    n = f"n={args.repeat}"
    rows = [
        ("start -> hub and reconciler ready: host hub, process launched (baseline)", f"{med(host['up']):6.2f} s"),
        ("  hub container, `docker compose up -d` of a new container", f"{med(box['up']):6.2f} s"),
        ("  ratio container / host", f"{med(box['up']) / med(host['up']):6.2f}x"),
        ("  hub container, `docker compose restart`", f"{med(box['restart']):6.2f} s"),
        ("`make up` (warm, checks included) -> ready", f"{med(host['make']):6.2f} s"),
        ("`make deploy` (warm, checks included) -> ready and healthy", f"{med(box['deploy']):6.2f} s"),
        ("idle memory, host hub processes, RSS (baseline)", f"{med(host['rss']):6.1f} MiB"),
        ("idle memory, hub container processes, RSS", f"{med(box['rss']):6.1f} MiB"),
        ("  ratio container / host", f"{med(box['rss']) / med(host['rss']):6.2f}x"),
        ("idle memory, hub container cgroup (docker stats)", f"{med(box['cgroup']):6.1f} MiB"),
    ]
    print(f"medians, {n}")
    for label, value in rows:
        print(f"{label:<64} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
