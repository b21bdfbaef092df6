"""Self-service on real parts: restart my server, reset my volumes, never anyone else's."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import datetime

import docker
import pytest
import requests

from tests.harness import Hub, wait_for
from tests.helpers import manifest

FILES = "echo h > /home/lab/h.txt && echo w > /home/lab/workspace/w.txt && echo c > /home/lab/.cache/c.txt"
LIST = "ls /home/lab/h.txt /home/lab/workspace/w.txt /home/lab/.cache/c.txt 2>/dev/null; true"


@pytest.fixture(scope="module")
def people(hub: Hub, engine: docker.DockerClient, admin_session) -> dict[str, requests.Session]:
    sessions = {name: hub.approved_user(admin_session, name) for name in ("sam", "tia")}
    for name in sessions:
        hub.start_server(name)
        hub.exec(engine, name, FILES)
    yield sessions
    for name, session in sessions.items():
        hub.stop_server(name)
        session.close()


def volumes_of(engine: docker.DockerClient, hub: Hub, user: str) -> set[str]:
    names = {k: hub.volume_name(user, k) for k in ("home", "workspace", "cache")}
    existing = {v.name for v in engine.volumes.list()}
    return {k for k, name in names.items() if name in existing}


def test_reset_cache_removes_only_that_volume_of_that_user(hub: Hub, engine, people) -> None:
    sam = people["sam"]
    hub.stop_server("sam")
    r = hub.as_user(sam, "GET", "users/sam/manage-volumes")
    assert r.status_code == 200, r.text
    listed = {v["key"]: v for v in r.json()["volumes"]}
    assert set(listed) == {"home", "workspace", "cache"}
    assert listed["cache"]["description"] and listed["cache"]["name"] == f"{hub.platform}-sam_cache"
    assert isinstance(listed["home"]["size"], int)

    r = hub.as_user(sam, "DELETE", "users/sam/manage-volumes", json={"volumes": ["cache"]})
    assert r.status_code == 200, r.text
    assert r.json()["reset_volumes"] == ["cache"] and r.json()["failed_volumes"] == []
    assert volumes_of(engine, hub, "sam") == {"home", "workspace"}
    assert volumes_of(engine, hub, "tia") == {"home", "workspace", "cache"}

    hub.start_server("sam")
    assert hub.exec(engine, "sam", LIST).split() == ["/home/lab/h.txt", "/home/lab/workspace/w.txt"]
    assert len(hub.exec(engine, "tia", LIST).split()) == 3
    hub.exec(engine, "sam", "echo c > /home/lab/.cache/c.txt")  # the recreated cache is writable

    events = hub.api("GET", f"resources/volumereset/{r.json()['resource']}/events").json()["items"]
    assert any(e["reason"] == "VolumeRemoved" and "requested by sam" in e["message"] for e in events)


def test_reset_is_refused_while_running_and_for_bad_names(hub: Hub, engine, people) -> None:
    sam = people["sam"]
    hub.start_server("sam") if "" not in hub.api("GET", "users/sam").json()["servers"] else None
    r = hub.as_user(sam, "DELETE", "users/sam/manage-volumes", json={"volumes": ["home"]})
    assert r.status_code == 400 and "running" in r.json()["error"]
    assert volumes_of(engine, hub, "sam") == {"home", "workspace", "cache"}
    hub.stop_server("sam")
    for bad in (["shared"], ["nope"], []):
        r = hub.as_user(sam, "DELETE", "users/sam/manage-volumes", json={"volumes": bad})
        assert r.status_code == 400, r.text
        assert "error" in r.json()
    assert volumes_of(engine, hub, "sam") == {"home", "workspace", "cache"}
    hub.start_server("sam")


def test_nobody_resets_another_users_volumes_but_an_admin(hub: Hub, engine, people, admin_session) -> None:
    sam, tia = people["sam"], people["tia"]
    r = hub.as_user(tia, "DELETE", "users/sam/manage-volumes", json={"volumes": ["cache"]})
    assert r.status_code == 403
    assert hub.as_user(tia, "GET", "users/sam/manage-volumes").status_code == 403
    assert hub.as_user(tia, "POST", "users/sam/restart-server").status_code == 403
    assert hub.as_user(sam, "GET", "users/nobody-here/manage-volumes").status_code == 403
    assert hub.as_user(admin_session, "GET", "users/nobody-here/manage-volumes").status_code == 404
    assert hub.as_user(admin_session, "POST", "users/nobody-here/restart-server").status_code == 404

    hub.stop_server("tia")
    r = hub.as_user(admin_session, "DELETE", "users/tia/manage-volumes", json={"volumes": ["cache"]})
    assert r.status_code == 200, r.text
    assert volumes_of(engine, hub, "tia") == {"home", "workspace"}
    assert volumes_of(engine, hub, "sam") == {"home", "workspace", "cache"}
    hub.start_server("tia")


def test_a_start_requested_during_a_reset_waits_for_it(hub: Hub, engine, people, tmp_path) -> None:
    hub.stop_server("tia")
    pid = hub.reconciler_details()["pid"]
    os.kill(pid, signal.SIGSTOP)  # hold the reconciler so the reset stays "in progress"
    try:
        path = tmp_path / "reset.yaml"
        path.write_text(manifest("VolumeReset", "tia-cache", {"user": "tia", "volumes": ["cache"]}))
        assert hub.hubctl("apply", "-f", str(path)).returncode == 0
        assert hub.api("POST", "users/tia/server").status_code in (201, 202)
        time.sleep(3)
        server = hub.api("GET", "users/tia").json()["servers"][""]
        assert server["pending"] == "spawn" and not server["ready"]
        with pytest.raises(docker.errors.NotFound):
            engine.containers.get(hub.container_name("tia"))
    finally:
        os.kill(pid, signal.SIGCONT)
    hub.wait_ready("tia")
    reset = hub.api("GET", "resources/volumereset/tia-cache").json()["status"]
    assert reset["phase"] == "Succeeded" and reset["resetVolumes"] == ["cache"]
    created = engine.containers.get(hub.container_name("tia")).attrs["Created"]
    started = datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00")
    assert datetime.fromisoformat(reset["finishedAt"]) < started
    assert "waits for volume reset tia-cache" in hub.log_path.read_text()


def test_restart_keeps_data_and_the_hub_coherent(hub: Hub, engine, people) -> None:
    sam = people["sam"]
    if "" not in hub.api("GET", "users/sam").json()["servers"]:
        hub.start_server("sam")
    hub.exec(engine, "sam", "echo kept > /home/lab/restart.txt")
    before = engine.containers.get(hub.container_name("sam"))
    mounts_before = sorted(m["Name"] for m in before.attrs["Mounts"])

    seen: list[tuple] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            server = hub.api("GET", "users/sam").json()["servers"].get("")
            seen.append(None if server is None else (server["ready"], server["pending"]))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = hub.as_user(sam, "POST", "users/sam/restart-server")
    finally:
        done.set()
        watcher.join()
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "restarted"
    # The hub's view was always a real state: ready, stopping, stopped or starting.
    assert set(seen) <= {(True, None), (False, "stop"), None, (False, "spawn")}, set(seen)
    assert seen[-1] == (True, None) or hub.api("GET", "users/sam").json()["servers"][""]["ready"]

    after = engine.containers.get(hub.container_name("sam"))
    assert after.id != before.id
    assert sorted(m["Name"] for m in after.attrs["Mounts"]) == mounts_before
    assert hub.exec(engine, "sam", "cat /home/lab/restart.txt").strip() == "kept"
    r = sam.get(f"{hub.url}user/sam/lab", timeout=30)  # ready again through the proxy
    assert r.status_code == 200 and "JupyterLab" in r.text


def test_restart_of_a_stopped_server_is_refused(hub: Hub, people) -> None:
    hub.stop_server("tia")
    r = hub.as_user(people["tia"], "POST", "users/tia/restart-server")
    assert r.status_code == 400 and "not running" in r.json()["error"]
    hub.start_server("tia")


def test_the_async_endpoints_answer_at_once_and_are_followed_to_the_end(hub: Hub, engine, people) -> None:
    tia = people["tia"]
    before = engine.containers.get(hub.container_name("tia")).id
    t0 = time.monotonic()
    r = hub.as_user(tia, "POST", "users/tia/server-restarts")
    answered = time.monotonic() - t0
    assert r.status_code == 202, r.text
    url = r.json()["url"]
    assert r.headers["Location"] == url and url.startswith("/hub/api/users/tia/server-restarts/")
    assert answered < 2  # recorded, not carried out, inside the request

    def follow():
        view = hub.as_user(tia, "GET", url.removeprefix("/hub/api/"))
        assert view.status_code == 200, view.text
        return view.json() if view.json()["finished"] else None

    done = wait_for(follow, 90, "the restart followed to its end", interval=0.5)
    assert done["phase"] == "Succeeded" and done["seconds"] > 0
    assert engine.containers.get(hub.container_name("tia")).id != before
    # Another user may not follow (or even see) tia's request.
    other = hub.as_user(people["sam"], "GET", url.removeprefix("/hub/api/"))
    assert other.status_code == 403
    # An invalid request is refused at once, with nothing recorded.
    bad = hub.as_user(tia, "POST", "users/tia/volume-resets", json={"volumes": ["shared"]})
    assert bad.status_code == 400 and "not a per-user volume" in bad.json()["message"]


def test_usernames_that_need_escaping_get_the_right_volumes(hub: Hub, engine) -> None:
    name = "dot.user@example"
    hub.create_user(name)
    hub.start_server(name)
    hub.stop_server(name)
    assert volumes_of(engine, hub, name) == {"home", "workspace", "cache"}
    r = hub.api("DELETE", f"users/{name}/manage-volumes", json={"volumes": ["home", "cache"]})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["reset_volumes"]) == ["cache", "home"]
    assert volumes_of(engine, hub, name) == {"workspace"}
    assert engine.volumes.get(f"{hub.platform}-dot-2euser-40example_workspace")


def test_one_pending_request_per_user_and_it_can_be_cancelled(hub: Hub, engine, people) -> None:
    sam = people["sam"]
    hub.exec(engine, "sam", "echo keep > /home/lab/.cache/k.txt")
    hub.stop_server("sam")
    pid = hub.reconciler_details()["pid"]
    os.kill(pid, signal.SIGSTOP)  # nothing is carried out: the request stays pending
    try:
        r = hub.as_user(sam, "POST", "users/sam/volume-resets", json={"volumes": ["cache"]})
        assert r.status_code == 202, r.text
        url, name = r.json()["url"], r.json()["name"]
        again = hub.as_user(sam, "POST", "users/sam/volume-resets", json={"volumes": ["home"]})
        assert again.status_code == 409 and name in again.json()["message"]
        listed = hub.as_user(sam, "GET", "users/sam/volume-resets").json()["items"]
        assert [i["name"] for i in listed] == [name]
        assert hub.as_user(people["tia"], "DELETE", url.removeprefix("/hub/api/")).status_code == 403
        assert hub.as_user(sam, "DELETE", url.removeprefix("/hub/api/")).status_code == 204
        assert hub.as_user(sam, "GET", url.removeprefix("/hub/api/")).status_code == 404
    finally:
        os.kill(pid, signal.SIGCONT)
    hub.start_server("sam")  # not held up by the cancelled reset
    assert hub.exec(engine, "sam", "cat /home/lab/.cache/k.txt").strip() == "keep"  # nothing was reset
