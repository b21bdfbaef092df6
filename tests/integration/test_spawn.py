"""DockerSpawner on the real engine: names, labels, volumes, the lab through the proxy."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.harness import Hub
from vocabulary import naming


@pytest.fixture(scope="module")
def alice(hub: Hub, admin_session) -> Iterator[str]:
    hub.approved_user(admin_session, "alice").close()
    hub.start_server("alice")
    yield "alice"
    hub.stop_server("alice")


def test_container_is_named_and_labelled(hub: Hub, engine: docker.DockerClient, alice: str) -> None:
    container = engine.containers.get(hub.container_name(alice))
    assert container.name == f"{hub.platform}-alice"
    labels = container.labels
    assert labels[naming.LABEL_PLATFORM] == hub.platform
    assert labels[naming.LABEL_USER] == "alice"
    assert labels[naming.LABEL_SERVER] == ""
    assert labels[naming.LABEL_SOCKET] == "false"
    assert len(labels[naming.LABEL_SPAWN_HASH]) == 16
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"


def test_container_mounts_the_three_templated_volumes(hub: Hub, engine: docker.DockerClient, alice: str) -> None:
    container = engine.containers.get(hub.container_name(alice))
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    expected = {
        "/home": f"{hub.platform}-alice_home",
        "/home/lab/workspace": f"{hub.platform}-alice_workspace",
        "/home/lab/.cache": f"{hub.platform}-alice_cache",
    }
    assert {dest: mounts[dest]["Name"] for dest in expected} == expected
    assert all(mounts[dest]["Type"] == "volume" and mounts[dest]["RW"] for dest in expected)
    assert "/var/run/docker.sock" not in mounts
    for key, name in (("home", expected["/home"]), ("cache", expected["/home/lab/.cache"])):
        volume = engine.volumes.get(name)
        assert volume.attrs["Labels"][naming.LABEL_PLATFORM] == hub.platform
        assert volume.attrs["Labels"][naming.LABEL_USER] == "alice"
        assert volume.attrs["Labels"][naming.LABEL_VOLUME] == key


def test_lab_answers_through_the_proxy(hub: Hub, alice: str) -> None:
    session, error = hub.login(alice)
    assert session is not None, error
    # The browser's path: the hub's OAuth hand-off, then the lab page itself.
    r = session.get(f"{hub.url}user/{alice}/lab", timeout=30)
    assert r.status_code == 200 and "JupyterLab" in r.text, r.url
    # Then the lab's API with the cookie the hand-off left.
    r = session.get(f"{hub.url}user/{alice}/api/status", timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert "started" in r.json()
    # The notifications extension is served by this lab (the broadcast endpoint).
    r = session.get(f"{hub.url}user/{alice}/jupyterlab-notifications-extension/notifications", timeout=30)
    assert r.status_code == 200, r.text[:300]


def test_hub_reports_the_server_running(hub: Hub, alice: str) -> None:
    server = hub.api("GET", f"users/{alice}").json()["servers"][""]
    assert server["ready"] is True
    assert server["url"] == f"/user/{alice}/"


def test_username_that_needs_escaping(hub: Hub, engine: docker.DockerClient) -> None:
    name = "eve.smith@example"
    hub.create_user(name)
    hub.start_server(name)
    try:
        container = engine.containers.get(hub.container_name(name))
        assert container.name == f"{hub.platform}-eve-2esmith-40example"
        volumes = {m["Destination"]: m["Name"] for m in container.attrs["Mounts"]}
        assert volumes["/home"] == f"{hub.platform}-eve-2esmith-40example_home"
        assert container.labels[naming.LABEL_USER] == name
    finally:
        hub.stop_server(name)
