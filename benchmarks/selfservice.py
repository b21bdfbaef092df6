"""Self-service benchmark: restart of a user's server, and reset of three of its volumes.

1. Restart: `POST /hub/api/users/<u>/restart-server` until it answers 200 (the hub reports
   the server ready), and until the lab answers `GET /user/<u>/api/status` through the proxy
   (with the server's own token, read from the recreated container). Reference: the same
   stop + start made directly with the hub's REST API (no reconciler). Baseline: a container
   of the same image with the same kind of volumes, `docker stop` + `rm` + `run` until its
   /api/status answers (the platform recreates the container too).
2. Reset of home, workspace and cache of a stopped user: `DELETE .../manage-volumes` until it
   answers 200. Baseline: `docker volume rm` of three volumes with the same labels and the
   same content (the image's files, copied in by a first mount).

Each is repeated (median); the ratio is platform / raw and the overhead platform - raw
(target: < 1 s). The restart is also broken down with the ServerRestart's events, the hub's
own "took N seconds to start/stop" log lines and JupyterHub's readiness probe.

    .venv/bin/python benchmarks/selfservice.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import docker
import docker.errors
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import Hub, cleanup_docker, free_port
from vocabulary import naming

PLATFORM = "jhds-bench-self"
IMAGE = "jupyterhub-ds/lab:minimal"
USER = "bench-self"
RAW_USER = "bench-raw"
VOLUMES = {"home": "/home", "workspace": "/home/lab/workspace", "cache": "/home/lab/.cache"}
POLL = 0.02  # seconds between probes while waiting (ours, not the platform's)
TIMEOUT = 180


def median(values: list[float]) -> float:
    return statistics.median(values)


def wait_until(probe, what: str, timeout: float = TIMEOUT) -> float:
    """Poll `probe()` every POLL s until truthy; the perf_counter at which it was."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if probe():
            return time.perf_counter()
        time.sleep(POLL)
    raise RuntimeError(f"{what} not within {timeout} s")


def answers(session: requests.Session, url: str, **kwargs) -> bool:
    try:
        return session.get(url, timeout=2, **kwargs).status_code == 200
    except requests.RequestException:
        return False


def wall(text: str) -> float:
    """An ISO time (the store's, or Docker's with nanoseconds; UTC 'Z') as a time.time() value."""
    text = re.sub(r"(\.\d{6})\d*", r"\1", text.strip()).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def container_timeline(container, t_wall: float) -> dict[str, float]:
    """When the engine created and started the container, and when the lab inside logged
    'is running at' (seconds after `t_wall`)."""
    container.reload()
    running = float("nan")
    for line in container.logs(timestamps=True).decode(errors="replace").splitlines():
        if "is running at" in line:
            running = wall(line.split(" ", 1)[0]) - t_wall
            break
    return {
        "created": wall(container.attrs["Created"]) - t_wall,
        "started": wall(container.attrs["State"]["StartedAt"]) - t_wall,
        "lab running": running,
    }


# --- the platform ------------------------------------------------------------------------
class Api:
    """The hub's REST API with the automation token, one keep-alive session."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.base = f"{hub.url}hub/api/"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {hub.token}"

    def __call__(self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 204), **kwargs) -> requests.Response:
        r = self.http.request(method, self.base + path, timeout=TIMEOUT, **kwargs)
        if r.status_code not in ok:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r

    def server(self, user: str) -> dict | None:
        return self("GET", f"users/{quote(user)}").json()["servers"].get("")


@dataclass
class Restart:
    hub_ready: float  # request -> 200 (the hub reports the server ready)
    lab_ready: float  # request -> the lab answers /api/status through the proxy
    steps: dict[str, float] = field(default_factory=dict)


class LogTail:
    """New lines of the hub's log since the last read."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def read(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return data.decode(errors="replace")


def hub_took(log: str, what: str) -> float | None:
    """JupyterHub's own 'User u took N seconds to start' / 'User u server took N seconds to stop'."""
    found = re.findall(rf"User {re.escape(USER)}(?: server)? took ([0-9.]+) seconds to {what}", log)
    return float(found[-1]) if found else None


def lab_status(hub: Hub, engine: docker.DockerClient, lab: requests.Session) -> bool:
    env = dict(e.split("=", 1) for e in engine.containers.get(hub.container_name(USER)).attrs["Config"]["Env"])
    headers = {"Authorization": f"token {env['JUPYTERHUB_API_TOKEN']}"}
    return answers(lab, f"{hub.url}user/{quote(USER)}/api/status", headers=headers)


def platform_restart(hub: Hub, api: Api, engine: docker.DockerClient, lab: requests.Session) -> Restart:
    before = engine.containers.get(hub.container_name(USER)).id
    log = LogTail(hub.log_path)
    t_wall, t0 = time.time(), time.perf_counter()
    r = api("POST", f"users/{quote(USER)}/restart-server", ok=(200,))
    t_hub = time.perf_counter()
    t_lab = wait_until(lambda: lab_status(hub, engine, lab), "lab through the proxy after restart")
    after = engine.containers.get(hub.container_name(USER))
    assert after.id != before, "the container was not recreated"

    # Where the time went: the resource's events (written by the hub and the reconciler).
    name = r.json()["resource"]
    events = api("GET", f"resources/serverrestart/{name}/events").json()["items"]
    at = {e["reason"]: wall(e["time"]) - t_wall for e in events}
    text = log.read()
    steps = {
        "stored": at["Created"],
        "picked up": at["Stopping"],
        "stop seen": at["Starting"],
        "ready seen": at["Restarted"],
        "answered": t_hub - t0,
        "hub stop": hub_took(text, "stop") or float("nan"),
        "hub start": hub_took(text, "start") or float("nan"),
        **container_timeline(after, t_wall),
    }
    return Restart(t_hub - t0, t_lab - t0, steps)


def hub_direct_restart(hub: Hub, api: Api, engine: docker.DockerClient, lab: requests.Session) -> Restart:
    """Reference without the reconciler: stop and start with the hub's own REST API."""
    t_wall, t0 = time.time(), time.perf_counter()
    api("DELETE", f"users/{quote(USER)}/server", ok=(202, 204))
    t_stop = wait_until(lambda: api.server(USER) is None, "server stopped")
    api("POST", f"users/{quote(USER)}/server", ok=(201, 202))
    t_hub = wait_until(lambda: bool((api.server(USER) or {}).get("ready")), "server ready")
    t_lab = wait_until(lambda: lab_status(hub, engine, lab), "lab through the proxy")
    timeline = container_timeline(engine.containers.get(hub.container_name(USER)), t_wall)
    return Restart(t_hub - t0, t_lab - t0, {"stopped": t_stop - t0, **timeline, "ready": t_hub - t0})


def platform_reset(api: Api) -> tuple[float, dict[str, float]]:
    t_wall, t0 = time.time(), time.perf_counter()
    r = api("DELETE", f"users/{quote(USER)}/manage-volumes", ok=(200,), json={"volumes": list(VOLUMES)})
    seconds = time.perf_counter() - t0
    body = r.json()
    assert sorted(body["reset_volumes"]) == sorted(VOLUMES) and not body["failed_volumes"], body
    events = api("GET", f"resources/volumereset/{body['resource']}/events").json()["items"]
    removed = [wall(e["time"]) - t_wall for e in events if e["reason"] in ("VolumeRemoved", "VolumeAbsent")]
    created = [wall(e["time"]) - t_wall for e in events if e["reason"] == "Created"]
    steps = {"stored": created[0], "first removed": min(removed), "last removed": max(removed), "answered": seconds}
    return seconds, steps


# --- raw docker ----------------------------------------------------------------------------
def raw_volume_names() -> dict[str, str]:
    return {key: f"{PLATFORM}-{RAW_USER}_{key}" for key in VOLUMES}


def raw_volumes(engine: docker.DockerClient) -> None:
    """Three volumes like the spawner's (same labels), filled like theirs by a first mount."""
    for key, name in raw_volume_names().items():
        labels = naming.object_labels(PLATFORM, RAW_USER) | {naming.LABEL_VOLUME: key}
        engine.volumes.create(name, labels=labels)
    engine.containers.run(
        IMAGE,
        ["true"],
        volumes={name: {"bind": VOLUMES[key], "mode": "rw"} for key, name in raw_volume_names().items()},
        labels={naming.LABEL_PLATFORM: PLATFORM},
        remove=True,
    )


def raw_run(engine: docker.DockerClient, port: int):
    return engine.containers.run(
        IMAGE,
        ["jupyter", "lab", "--ip=127.0.0.1", f"--port={port}", "--no-browser", "--IdentityProvider.token=''"],
        name=f"{PLATFORM}-{RAW_USER}",
        detach=True,
        network_mode="host",
        volumes={name: {"bind": VOLUMES[key], "mode": "rw"} for key, name in raw_volume_names().items()},
        labels=naming.object_labels(PLATFORM, RAW_USER, ""),
    )


def raw_restarts(engine: docker.DockerClient, repeat: int) -> list[Restart]:
    """`docker stop` + `docker rm` + `docker run` of an equivalent lab until /api/status answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/status"
    probe = requests.Session()
    raw_volumes(engine)
    container = raw_run(engine, port)
    wait_until(lambda: answers(probe, url), "raw lab")
    times = []
    for i in range(repeat + 1):  # the first one is a warm-up
        t_wall, t0 = time.time(), time.perf_counter()
        container.stop()
        container.remove()
        t_stop = time.perf_counter()
        container = raw_run(engine, port)
        t1 = wait_until(lambda: answers(probe, url), "raw lab after restart")
        if i:
            steps = {"stopped": t_stop - t0, **container_timeline(container, t_wall), "ready": t1 - t0}
            times.append(Restart(t1 - t0, t1 - t0, steps))
    container.remove(force=True)
    return times


def raw_resets(engine: docker.DockerClient, repeat: int) -> list[float]:
    """`docker volume rm` of three volumes like the user's."""
    times = []
    for _ in range(repeat):
        raw_volumes(engine)
        names = list(raw_volume_names().values())
        t0 = time.perf_counter()
        for name in names:
            engine.api.remove_volume(name)
        times.append(time.perf_counter() - t0)
    return times


# --- report --------------------------------------------------------------------------------
def verdict(overhead: float) -> str:
    return "target < 1 s: met" if overhead < 1 else "target < 1 s: NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (default 3)")
    args = parser.parse_args()

    engine = docker.from_env()
    cleanup_docker(engine, PLATFORM)
    state = Path(tempfile.mkdtemp(prefix="jhds-bench-self-"))
    hub = Hub(state_dir=state, platform=PLATFORM)
    t_start = time.perf_counter()
    try:
        up = hub.up()
        assert up.returncode == 0, f"make up failed:\n{up.stdout}\n{up.stderr}"
        api = Api(hub)
        lab = requests.Session()
        hub.create_user(USER)
        hub.start_server(USER)
        wait_until(lambda: lab_status(hub, engine, lab), "lab through the proxy")

        # 1. restart (one warm-up each, not counted)
        platform_restart(hub, api, engine, lab)
        restarts = [platform_restart(hub, api, engine, lab) for _ in range(args.repeat)]
        hub_direct_restart(hub, api, engine, lab)
        direct = [hub_direct_restart(hub, api, engine, lab) for _ in range(args.repeat)]
        hub.stop_server(USER)
        raw_restart = raw_restarts(engine, args.repeat)

        # 2. reset of three volumes of a stopped user (volumes recreated by a start, untimed)
        resets, reset_steps = [], []
        for i in range(args.repeat):
            assert all(engine.volumes.get(hub.volume_name(USER, k)) for k in VOLUMES)
            seconds, steps = platform_reset(api)
            resets.append(seconds)
            reset_steps.append(steps)
            for key in VOLUMES:
                try:
                    engine.volumes.get(hub.volume_name(USER, key))
                    raise AssertionError(f"volume {key} still exists after the reset")
                except docker.errors.NotFound:
                    pass
            if i < args.repeat - 1:
                hub.start_server(USER)
                hub.stop_server(USER)
        raw_reset = raw_resets(engine, args.repeat)
    finally:
        hub.down()
        cleanup_docker(engine, PLATFORM)
        shutil.rmtree(state, ignore_errors=True)
    total = time.perf_counter() - t_start

    n = args.repeat
    p_hub, p_lab = median([r.hub_ready for r in restarts]), median([r.lab_ready for r in restarts])
    d_lab = median([r.lab_ready for r in direct])
    raw_r = median([r.lab_ready for r in raw_restart])
    print(f"restart of a running server (median of {n}; one warm-up each):")
    print(f"  raw docker stop+rm+run -> /api/status answers:  {raw_r:6.2f} s  (baseline)")
    print(
        f"  POST restart-server -> 200 (hub says ready):    {p_hub:6.2f} s  ratio {p_hub / raw_r:4.2f}x"
        f"  overhead {p_hub - raw_r:+5.2f} s"
    )
    print(
        f"  POST restart-server -> lab answers via proxy:   {p_lab:6.2f} s  ratio {p_lab / raw_r:4.2f}x"
        f"  overhead {p_lab - raw_r:+5.2f} s  ({verdict(p_lab - raw_r)})"
    )
    print(
        f"  reference, hub REST stop+start (no reconciler): {d_lab:6.2f} s to lab answers via proxy"
        f"  ratio {d_lab / raw_r:4.2f}x  overhead {d_lab - raw_r:+5.2f} s"
    )
    print(
        f"  all runs (s): raw {' '.join(f'{r.lab_ready:.2f}' for r in raw_restart)}"
        f" | platform 200 {' '.join(f'{r.hub_ready:.2f}' for r in restarts)}"
        f", lab {' '.join(f'{r.lab_ready:.2f}' for r in restarts)}"
        f" | hub direct {' '.join(f'{r.lab_ready:.2f}' for r in direct)}"
    )
    for r in restarts:
        r.steps["begin"], r.steps["stopped"], r.steps["ready"] = (
            r.steps["picked up"],
            r.steps["stop seen"],
            r.steps["ready seen"],
        )
    for r in raw_restart + direct:
        r.steps["begin"] = 0.0
    for r in raw_restart:
        r.steps["end"] = r.lab_ready
    for r in restarts + direct:
        r.steps["end"] = r.lab_ready
    phases = [
        ("request -> reconciler starts (store poll)", "begin", "begin"),
        ("stop + remove the old container", "begin", "stopped"),
        ("stopped -> new container created", "stopped", "created"),
        ("created -> started", "created", "started"),
        ("started -> lab logs 'is running at'", "started", "lab running"),
        ("lab running -> ready reported", "lab running", "ready"),
        ("ready -> lab answers via proxy / 200", "ready", "end"),
    ]
    print("  phases (median of per-run differences, s; from container timestamps, lab logs,")
    print("  the ServerRestart's events; hub stop/start = JupyterHub's own 'took N seconds'):")
    print("    phase                                           raw  hub direct  platform")

    def phase(runs: list[Restart], a: str, b: str) -> float:
        return median([r.steps[b] - (r.steps[a] if a != b else 0.0) for r in runs])

    for label, a, b in phases:
        cells = [phase(runs, a, b) for runs in (raw_restart, direct, restarts)]
        print(f"    {label:44s} {cells[0]:6.2f}  {cells[1]:10.2f}  {cells[2]:8.2f}")
    print(
        f"    {'total':44s} {raw_r:6.2f}  {d_lab:10.2f}  {p_lab:8.2f}"
        f"   (JupyterHub in the platform runs: stop {median([r.steps['hub stop'] for r in restarts]):.2f},"
        f" start {median([r.steps['hub start'] for r in restarts]):.2f};"
        f" reconciler saw ready -> 200: {median([r.steps['answered'] - r.steps['ready seen'] for r in restarts]):.2f})"
    )

    p_reset, raw_v = median(resets), median(raw_reset)
    rsteps = {k: median([s[k] for s in reset_steps]) for k in reset_steps[0]}
    print(f"reset of home, workspace and cache of a stopped user (median of {n}):")
    print(f"  raw docker volume rm x3:                        {raw_v:6.3f} s  (baseline)")
    print(
        f"  DELETE manage-volumes -> 200:                   {p_reset:6.3f} s  ratio {p_reset / raw_v:5.1f}x"
        f"  overhead {p_reset - raw_v:+6.3f} s  ({verdict(p_reset - raw_v)})"
    )
    print(
        f"  all runs (s): raw {' '.join(f'{t:.3f}' for t in raw_reset)}"
        f" | platform {' '.join(f'{t:.3f}' for t in resets)}"
    )
    print(
        f"  steps (s after the request): stored {rsteps['stored']:.3f}, first volume removed"
        f" {rsteps['first removed']:.3f}, last {rsteps['last removed']:.3f}, answered {rsteps['answered']:.3f}"
    )
    print(f"total benchmark time (incl. make up and teardown): {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
