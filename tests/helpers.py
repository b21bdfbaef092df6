"""The suite's one set of helpers for resources: manifests as tests write them, applied
through a hub's REST API, the reads and waits on what the reconciler made of them, and the
users' server containers as the engine shows them.

Every test module uses these (and `tests.harness` for platforms): none defines its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import docker
from docker.models.containers import Container

from reconciler.manifests import parse_manifests
from tests.harness import wait_for

if TYPE_CHECKING:
    from tests.harness import Hub

API_VERSION = "jupyterhub-ds/v1"
SOCKET = "/var/run/docker.sock"
# The phases a resource ends in: a request's (Succeeded, Failed), a broadcast's (Completed).
ENDED = ("Succeeded", "Failed", "Completed")


def manifest(kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """One manifest as YAML text, a line a spec field (values in JSON, which YAML reads):
    files in the manifests folder, `hubctl apply -f` and the API take it alike, and a test can
    name a field's line (a GroupMembership's `prune` is line 8)."""
    lines = [f"apiVersion: {API_VERSION}", f"kind: {kind}", "metadata:", f"  name: {name}"]
    if labels:
        lines.append(f"  labels: {json.dumps(labels)}")
    lines.append("spec: {}" if not spec else "spec:")
    lines += [f"  {key}: {json.dumps(value, ensure_ascii=False)}" for key, value in spec.items()]
    return "\n".join(lines) + "\n"


def gm(name: str, group: str, members: list[str], prune: bool = True, labels: dict[str, str] | None = None) -> str:
    """A GroupMembership manifest (see `manifest`)."""
    return manifest("GroupMembership", name, {"group": group, "members": members, "prune": prune}, labels)


def broadcasts(count: int, prefix: str = "b", message: str = "hi") -> str:
    """`count` Broadcast documents, <prefix>0 to <prefix><count-1>, a few lines each (what
    the tests of body and document limits send); `message` is YAML as written."""
    return "".join(
        f"---\napiVersion: {API_VERSION}\nkind: Broadcast\nmetadata: {{name: {prefix}{i}}}\n"
        f"spec: {{message: {message}}}\n"
        for i in range(count)
    )


def parsed(*documents: str) -> list:
    """The documents as the store takes them, for tests without a hub."""
    return parse_manifests("---\n".join(documents), "test.yaml")


def apply_manifests(hub: Hub, *documents: str) -> list[dict]:
    """Apply the documents (YAML or JSON text) as one `POST manifests`; its results."""
    r = hub.api("POST", "manifests", data="\n---\n".join(documents).encode())
    assert r.status_code == 200, r.text
    return r.json()["results"]


def apply(hub: Hub, kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> list[dict]:
    """Apply one resource (see `manifest`); its results."""
    return apply_manifests(hub, manifest(kind, name, spec, labels))


def resource(hub: Hub, kind: str, name: str) -> dict | None:
    """The resource as the API shows it (metadata, spec, status); None when there is none."""
    r = hub.api("GET", f"resources/{kind.lower()}/{name}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()


def status(hub: Hub, kind: str, name: str) -> dict:
    """The resource's status; {} before the first reconcile or when there is no resource."""
    return (resource(hub, kind, name) or {}).get("status") or {}


def condition(status: dict, kind: str = "Ready") -> dict:
    """One condition of a status, by its type."""
    return next(c for c in status["conditions"] if c["type"] == kind)


def finished(hub: Hub, kind: str, name: str, timeout: float = 60, interval: float = 0.3) -> dict:
    """Wait until the resource's phase is one it ends in (`ENDED`); its status."""
    return wait_for(
        lambda: (s := status(hub, kind, name)).get("phase") in ENDED and s,
        timeout,
        f"{kind}/{name} finished",
        interval=interval,
    )


def events(hub: Hub, kind: str | None = None, name: str | None = None, reason: str | None = None) -> list[dict]:
    """The events of one resource (kind and name), else the newest of all; of one reason if given."""
    path = f"resources/{kind.lower()}/{name}/events" if kind and name else "events"
    items = hub.api("GET", path, params={"limit": 1000}).json()["items"]
    return [e for e in items if reason is None or e["reason"] == reason]


def group_members(hub: Hub, group: str) -> set[str] | None:
    """The hub group's members; None when the group does not exist."""
    r = hub.api("GET", f"groups/{group}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text  # a refusal or an error is not "no such group"
    return set(r.json()["users"])


def remove(
    hub: Hub, resources: Iterable[tuple[str, str]] = (), groups: Iterable[str] = (), files: Iterable[str] = ()
) -> None:
    """Take off `hub` what a test module put on it (the session hub is shared: see
    tests/integration/leaks.py), in the order that keeps it off: manifest files (GitOps would
    apply them again), resources (kind, name; a GroupMembership's controller would make its
    group again), then hub groups. What is already gone is no error."""
    paths = [hub.manifests_dir / name for name in files]
    for path in paths:
        path.unlink(missing_ok=True)
    if paths:
        time.sleep(2)  # a GitOps pass (every second) that read them before they went is over
    for kind, name in resources:
        ref = f"resources/{kind.lower()}/{quote(name)}"
        # Until the answer is "none": a resource put back meanwhile is deleted again.
        wait_for(lambda ref=ref: hub.api("DELETE", ref).status_code == 404, 10, f"{kind}/{name} deleted")
    for group in groups:
        r = hub.api("DELETE", f"groups/{quote(group)}")
        assert r.status_code in (204, 404), r.text


def running_container(engine: docker.DockerClient, hub: Hub, user: str) -> Container | None:
    """The user's server container if it runs, else None."""
    try:
        c = engine.containers.get(hub.container_name(user))
    except docker.errors.NotFound:
        return None
    return c if c.status == "running" else None


def has_socket(container: Container) -> bool:
    """Whether the container mounts the engine's socket."""
    return any(m["Destination"] == SOCKET for m in container.attrs["Mounts"])
