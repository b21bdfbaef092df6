"""The engine-wide access survey: what gives a container power over the host, and who may have it."""

from __future__ import annotations

from reconciler.controllers.engineaccess import escalations, guarded_paths, survey_engine
from vocabulary import naming

SOCKET = "/var/run/docker.sock"


def container(name: str, *, sources=(), privileged=False, pid_host=False, labels=None) -> dict:
    return {
        "id": f"id-{name}",
        "name": name,
        "labels": labels or {},
        "privileged": privileged,
        "pid_host": pid_host,
        "sources": list(sources),
    }


def test_the_socket_and_every_parent_of_it_count() -> None:
    sockets, parents = guarded_paths(SOCKET)
    assert "/var/run/docker.sock" in sockets and {"/var/run", "/var", "/"} <= parents
    for source in ("/var/run", "/", "/var", "/var/run/docker.sock", "/var/run/"):
        assert escalations(container("x", sources=[source]), SOCKET), source
    assert (
        escalations(container("x", privileged=True)) if False else escalations(container("x", privileged=True), SOCKET)
    )
    assert escalations(container("x", pid_host=True), SOCKET) == ["the host's PID namespace"]
    assert escalations(container("x", sources=["/home/data", "/var/lib/x"]), SOCKET) == []


def test_who_may_keep_it() -> None:
    ours = {naming.LABEL_PLATFORM: "p", naming.LABEL_USER: "ann"}
    containers = [
        container("lab-ann", sources=[SOCKET], labels=ours),  # a server of ours: the per-user watch's
        container("lab-ann-root", sources=["/"], labels=ours),  # ours, but more than the socket
        container("sibling", sources=["/run"]),  # unlabelled, a parent folder
        container("priv", privileged=True),
        container("forged", sources=[SOCKET], labels={naming.LABEL_PLATFORM: "other", naming.LABEL_USER: "x"}),
        container("traefik", sources=[SOCKET]),  # allowed by name
        container("plain", sources=["/srv/data"]),
    ]
    rows = survey_engine(containers, "p", SOCKET, ["traefik"])
    assert [r.container for r in rows] == ["forged", "lab-ann-root", "priv", "sibling"]
    assert {r.container: r.user for r in rows}["lab-ann-root"] == "ann"
