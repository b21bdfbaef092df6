"""Revocation delay: membership removed -> the Docker socket gone from the user's server.

Two paths, in the same run, at the default resync interval (30 s):
- event-driven: the membership is removed through desired state (`POST /hub/api/manifests`,
  as `hubctl apply` or a GitOps edit does); the GroupMembership reconcile wakes the check;
- resync only: the membership is removed by hand through the hub's API (no event reaches
  the reconciler), so the next periodic resync finds it (the baseline).
"Socket gone" is when the container that had the socket stops running; "back" is when the
hub reports the server ready again (without it).

    .venv/bin/python benchmarks/privileged.py [--repeat 3]
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

from tests.harness import Hub, cleanup_docker
from vocabulary import naming

PLATFORM = "jhds-bench-priv"
USER = "vic"


def manifest(members: list[str]) -> str:
    return (
        "apiVersion: jupyterhub-ds/v1\nkind: GroupMembership\nmetadata: {name: docker-privileged}\n"
        f"spec: {{group: docker-privileged, members: {members!r}, prune: true}}\n"
    ).replace("'", '"')


def running_container(client: docker.DockerClient, hub: Hub):
    try:
        c = client.containers.get(hub.container_name(USER))
    except docker.errors.NotFound:
        return None
    return c if c.status == "running" else None


def has_socket(c) -> bool:
    return any(m["Destination"] == "/var/run/docker.sock" for m in c.attrs["Mounts"])


def grant(hub: Hub, client: docker.DockerClient) -> str:
    """Make VIC a member with a running server that has the socket; its container id."""
    assert hub.api("POST", "manifests", data=manifest([USER])).status_code == 200
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        c = running_container(client, hub)
        ready = (hub.api("GET", f"users/{USER}").json()["servers"].get("") or {}).get("ready")
        if c is not None and has_socket(c) and ready:
            return c.id
        if c is not None and ready and not has_socket(c):
            hub.stop_server(USER)
        if "" not in hub.api("GET", f"users/{USER}").json()["servers"]:
            hub.start_server(USER)
        time.sleep(0.2)
    raise RuntimeError("could not give vic a server with the socket")


def revoke_and_time(hub: Hub, client: docker.DockerClient, how: str) -> tuple[float, float]:
    old = grant(hub, client)
    time.sleep(1)  # let the grant settle (no pending reconcile)
    t0 = time.monotonic()
    if how == "desired-state":
        assert hub.api("POST", "manifests", data=manifest([])).status_code == 200
    else:  # by hand: delete the desired state first so GitOps does not fight it, then the member
        assert hub.api("DELETE", "resources/groupmembership/docker-privileged").status_code == 204
        r = hub.api("DELETE", f"groups/{naming.PRIVILEGED_GROUP}/users", json={"users": [USER]})
        assert r.status_code == 200, r.text
    gone = back = None
    while time.monotonic() - t0 < 120:
        c = running_container(client, hub)
        if gone is None and (c is None or c.id != old):
            gone = time.monotonic() - t0
        if gone is not None and c is not None and c.id != old and not has_socket(c):
            server = hub.api("GET", f"users/{USER}").json()["servers"].get("") or {}
            if server.get("ready"):
                back = time.monotonic() - t0
                break
        time.sleep(0.05)
    if gone is None or back is None:
        raise RuntimeError(f"revocation ({how}) did not complete within 120 s")
    return gone, back


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env()
    cleanup_docker(client, PLATFORM)
    hub = Hub(state_dir=Path(tempfile.mkdtemp(prefix="jhds-bench-priv-")), platform=PLATFORM)
    results: dict[str, list[tuple[float, float]]] = {"desired-state": [], "by-hand": []}
    try:
        assert hub.up().returncode == 0, "make up failed"
        hub.create_user(USER)
        for _ in range(args.repeat):
            results["desired-state"].append(revoke_and_time(hub, client, "desired-state"))
        results["by-hand"].append(revoke_and_time(hub, client, "by-hand"))
    finally:
        hub.down()
        cleanup_docker(client, PLATFORM)

    print("revocation delay, membership removed -> socket gone / server back without it (RESYNC_SECONDS=30):")
    for how, label in (("desired-state", "event-driven (apply/GitOps)"), ("by-hand", "resync only (hand edit)")):
        gone = [g for g, _ in results[how]]
        back = [b for _, b in results[how]]
        print(
            f"  {label:<28} socket gone: median {statistics.median(gone):5.2f} s (max {max(gone):5.2f})"
            f"   back: median {statistics.median(back):5.2f} s   n={len(gone)}"
        )
    event, resync = statistics.median(g for g, _ in results["desired-state"]), results["by-hand"][0][0]
    print(f"  ratio event-driven / resync-only (socket gone): {event / resync:5.2f}x   (target: < 5 s from the change)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
