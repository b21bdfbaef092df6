"""Pure parts of the Swarm backend: nodes, placement, services seen as containers, log frames."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.clients.swarm import (
    Node,
    NodeDown,
    Placements,
    SwarmEngine,
    as_container,
    least_loaded,
    strip_log_headers,
)
from vocabulary import naming


def raw_node(nid: str, name: str, state: str = "ready", availability: str = "active") -> dict[str, Any]:
    return {
        "ID": nid,
        "Description": {"Hostname": "vm"},
        "Spec": {
            "Availability": availability,
            "Labels": {"io.jupyterhub-ds.node": name, naming.NODE_LABEL_SOCKET: f"/run/{name}.sock"},
        },
        "Status": {"State": state, "Addr": "127.0.0.1"},
    }


def test_node_reads_its_name_socket_and_readiness() -> None:
    node = Node.of(raw_node("id-a", "a"), "/var/run/docker.sock")
    assert (node.name, node.socket, node.ready) == ("a", "/run/a.sock", True)
    bare = Node.of({"ID": "x" * 25, "Description": {"Hostname": "h1"}, "Spec": {}, "Status": {"State": "down"}}, "/s")
    assert (bare.name, bare.socket, bare.ready) == ("h1", "/s", False)
    assert not Node.of(raw_node("id-b", "b", availability="drain"), "/s").ready


def test_least_loaded_skips_nodes_that_are_not_ready_and_breaks_ties_by_name() -> None:
    a, b, c = (Node.of(raw_node(f"id-{n}", n), "/s") for n in "abc")
    down = Node.of(raw_node("id-d", "d", state="down"), "/s")
    assert least_loaded([a, b, c, down], {"id-a": 2, "id-b": 1, "id-c": 1}) == b
    assert least_loaded([a, b, down], {"id-a": 0, "id-b": 0}) == a
    assert least_loaded([down], {}) is None


def test_a_service_reads_like_a_container() -> None:
    service = {
        "ID": "svc1",
        "Spec": {
            "Name": "lab-ann",
            "Labels": {"svc": "1"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "jupyterhub-ds/lab:minimal@sha256:abc",
                    "Labels": {naming.LABEL_USER: "ann"},
                    "Env": ["JUPYTERHUB_API_TOKEN=t"],
                    "Mounts": [{"Type": "bind", "Source": "/run/a.sock", "Target": "/var/run/docker.sock"}],
                }
            },
        },
    }
    c = as_container(service)
    assert c["Names"] == ["/lab-ann"] and c["Image"] == "jupyterhub-ds/lab:minimal"
    assert c["Labels"] == {naming.LABEL_USER: "ann"} and c["State"] == "running"
    assert c["Mounts"] == [{"Type": "bind", "Source": "/run/a.sock", "Destination": "/var/run/docker.sock"}]


def test_log_frames_are_stripped_and_plain_logs_kept() -> None:
    framed = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n" + b"\x02\x00\x00\x00\x00\x00\x00\x04{}\n\n"
    assert strip_log_headers(framed) == "hi\n{}\n\n"
    assert strip_log_headers(b"plain\n") == "plain\n"


class FakeApi:
    def __init__(self, nodes: list[dict[str, Any]]):
        self._nodes = nodes

    def nodes(self) -> list[dict[str, Any]]:
        return self._nodes

    def services(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"ID": "s1", "Spec": {"Labels": {naming.LABEL_USER: "old"}}}]

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"ServiceID": "s1", "NodeID": "id-a"}]


class FakeClient:
    def __init__(self, nodes: list[dict[str, Any]]):
        self.api = FakeApi(nodes)


def engine(nodes: list[dict[str, Any]], book: dict[str, dict[str, Any]]) -> SwarmEngine:
    placements = Placements(read_all=lambda: dict(book), write=book.__setitem__)
    return SwarmEngine(placements, "helper", factory=lambda: FakeClient(nodes))  # type: ignore[arg-type,return-value]


def test_a_new_user_goes_to_the_least_loaded_node_and_stays_there() -> None:
    book: dict[str, dict[str, Any]] = {}
    e = engine([raw_node("id-a", "a"), raw_node("id-b", "b")], book)
    assert e.node_for_now("p", "ann", ["p-ann_home"]).name == "b"  # a runs one server already
    assert book["ann"]["node"] == "id-b" and book["ann"]["volumes"] == ["p-ann_home"]
    assert e.node_for_now("p", "ann", ["p-ann_home", "p-ann_cache"]).name == "b"
    assert book["ann"]["volumes"] == ["p-ann_cache", "p-ann_home"]
    assert e.placements.node_of_volume("p-ann_cache") == ("ann", "id-b")
    assert e.placements.node_of_volume("p-bob_home") is None


def test_a_user_whose_node_is_down_gets_an_error_naming_it() -> None:
    book = {"ann": {"node": "id-b", "volumes": ["p-ann_home"]}}
    e = engine([raw_node("id-a", "a"), raw_node("id-b", "b", state="down")], book)
    with pytest.raises(NodeDown) as caught:
        e.node_for_now("p", "ann", ["p-ann_home"])
    assert "node b" in str(caught.value) and "ann" in str(caught.value) and "move-user" in str(caught.value)
    assert caught.value.reason == "NodeDown"
