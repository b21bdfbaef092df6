"""Broadcasts on real parts: the hub, the reconciler, DockerSpawner labs with the extension."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

import docker
import pytest
import requests

from tests.harness import Hub, server_token, wait_for
from tests.harness import lab_queue as queued
from tests.helpers import remove

USERS = ("nina", "omar", "pia")
STOPPED = "quincy"
INGEST = "jupyterlab-notifications-extension"


def broadcast(hub: Hub, session: requests.Session, spec: dict) -> dict:
    r = hub.as_user(session, "POST", "notifications", json=spec)
    assert r.status_code == 202 and r.headers["Location"].endswith(r.json()["name"]), r.text
    name = r.json()["name"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        data = hub.as_user(session, "GET", f"notifications/{name}").json()
        if data["phase"] == "Completed":
            return data
        time.sleep(0.2)
    raise AssertionError(f"broadcast {name} did not complete: {data}")


def api_tokens(hub: Hub) -> int:
    with sqlite3.connect(hub.state_dir / "jupyterhub.sqlite") as db:
        return db.execute("select count(*) from api_tokens").fetchone()[0]


@pytest.fixture(scope="module")
def running(hub: Hub, engine: docker.DockerClient) -> list[str]:
    for user in (*USERS, STOPPED):
        hub.create_user(user)
    for user in USERS:
        hub.start_server(user)
        queued(hub, engine, user)  # start from an empty queue
    hub.api("POST", "groups/analysts-b", json={"users": ["omar"]})
    yield list(USERS)
    for user in USERS:
        hub.stop_server(user)
    remove(hub, groups=["analysts-b"])


def test_broadcast_to_everyone_reaches_each_running_lab_once(hub: Hub, engine, running, admin_session) -> None:
    tokens_before = api_tokens(hub)
    data = broadcast(hub, admin_session, {"message": "Hub restarts at 18:00", "type": "warning", "autoClose": False})
    rows = {r["user"]: r for r in data["deliveries"]}
    assert set(running) <= set(rows) and STOPPED not in rows
    assert all(rows[u]["outcome"] == "delivered" and rows[u]["httpStatus"] == 200 for u in running)
    assert data["counts"]["delivered"] == data["counts"]["total"] == len(rows)
    for user in running:
        (note,) = [n for n in queued(hub, engine, user) if n["message"] == "Hub restarts at 18:00"]
        assert note["type"] == "warning"
        assert note["autoClose"] is False
        assert [a["label"] for a in note["actions"]] == ["Dismiss"]
        assert note["data"] == {"broadcast": data["name"]}
        assert queued(hub, engine, user) == []  # exactly one, and the queue is now empty
    # No credential was minted for the delivery.
    assert api_tokens(hub) == tokens_before


def test_targets_by_user_and_by_group(hub: Hub, engine, running, admin_session) -> None:
    data = broadcast(hub, admin_session, {"message": "for nina", "targets": {"users": ["nina"]}})
    assert [(r["user"], r["outcome"]) for r in data["deliveries"]] == [("nina", "delivered")]
    data = broadcast(hub, admin_session, {"message": "for analysts", "targets": {"groups": ["analysts-b"]}})
    assert [(r["user"], r["outcome"]) for r in data["deliveries"]] == [("omar", "delivered")]
    assert [n["message"] for n in queued(hub, engine, "pia")] == []
    assert [n["message"] for n in queued(hub, engine, "nina")] == ["for nina"]


def test_seed_api_answers_per_user(hub: Hub, running, admin_session) -> None:
    r = hub.as_user(
        admin_session,
        "POST",
        "notifications/broadcast",
        json={"message": "seed", "variant": "success", "autoClose": 3000, "recipients": ["pia", "omar"]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["successful"], body["failed"]) == (2, 2, 0)
    assert sorted(d["username"] for d in body["details"]) == ["omar", "pia"]
    assert all(d["status"] == "success" for d in body["details"])
    r = hub.as_user(admin_session, "POST", "notifications/broadcast", json={"message": "x", "recipients": [STOPPED]})
    assert r.json() == {
        "total": 0,
        "successful": 0,
        "failed": 0,
        "details": [],
        "name": r.json()["name"],
        "message": "No active servers found",
    }


def test_bad_input_and_permissions(hub: Hub, running, admin_session) -> None:
    r = hub.as_user(admin_session, "POST", "notifications/broadcast", json={"message": "x" * 141})
    assert r.status_code == 400
    assert "message: must be at most 140 characters (got 141)" in r.json()["message"]
    r = hub.as_user(admin_session, "POST", "notifications", json={"message": "x" * 141})
    assert r.status_code == 400 and "140" in r.json()["message"]
    r = hub.as_user(admin_session, "POST", "notifications", json={"message": "hi", "type": "loud"})
    assert r.status_code == 400 and "type" in r.json()["message"]

    # A POST carrying the admin's cookie but no XSRF token is refused.
    r = admin_session.post(f"{hub.url}hub/api/notifications", json={"message": "csrf"}, timeout=10)
    assert r.status_code == 403
    # A user who is not an operator: 403 on the page and on the API.
    hub.signup("randy")
    hub.approve(admin_session, "randy")
    randy, _ = hub.login("randy")
    assert randy.get(f"{hub.url}hub/notifications", timeout=10).status_code == 403
    assert hub.as_user(randy, "POST", "notifications", json={"message": "hi"}).status_code == 403
    assert hub.as_user(randy, "POST", "notifications/broadcast", json={"message": "hi"}).status_code == 403
    page = admin_session.get(f"{hub.url}hub/notifications", timeout=10)
    assert page.status_code == 200 and 'id="counter"' in page.text
    assert 'id="nav-notifications"' in admin_session.get(f"{hub.url}hub/home", timeout=10).text
    assert 'id="nav-notifications"' not in randy.get(f"{hub.url}hub/home", timeout=10).text


def test_a_lab_token_opens_no_other_server(hub: Hub, engine, running) -> None:
    token = server_token(engine, hub, "nina")
    auth = {"Authorization": f"token {token}"}
    assert requests.get(f"{hub.url}user/nina/api/status", headers=auth, timeout=10).status_code == 200
    r = requests.post(f"{hub.url}user/omar/{INGEST}/ingest", json={"message": "x"}, headers=auth, timeout=10)
    assert r.status_code in (403, 404) or "login" in r.url
    assert requests.get(f"{hub.url}user/omar/api/status", headers=auth, timeout=10).status_code == 403


def test_frozen_server_times_out_without_holding_others_back(hub: Hub, engine, running, admin_session) -> None:
    container = engine.containers.get(hub.container_name("pia"))
    container.pause()
    try:
        r = hub.as_user(admin_session, "POST", "notifications", json={"message": "frozen test"})
        name = r.json()["name"]
        t0 = time.monotonic()
        others_done = None
        while time.monotonic() - t0 < 20:
            data = hub.as_user(admin_session, "GET", f"notifications/{name}").json()
            rows = {d["user"]: d for d in data["deliveries"]}
            if others_done is None and all(rows.get(u, {}).get("outcome") == "delivered" for u in ("nina", "omar")):
                others_done = time.monotonic() - t0
            if data["phase"] == "Completed":
                break
            time.sleep(0.1)
        assert data["phase"] == "Completed"
        assert rows["pia"]["outcome"] == "timeout" and "no answer" in rows["pia"]["error"]
        assert others_done is not None and others_done < 2.0  # 0.2 s store poll + delivery + ledger flush
    finally:
        container.unpause()


def test_lab_without_the_extension_is_reported(hub: Hub, engine, running, admin_session) -> None:
    # Turn the server extension off in nina's (persistent) home, then restart her server.
    hub.exec(
        engine,
        "nina",
        'mkdir -p /home/lab/.jupyter && echo \'{"ServerApp": {"jpserver_extensions": '
        '{"jupyterlab_notifications_extension": false}}}\' > /home/lab/.jupyter/jupyter_server_config.json',
    )
    assert hub.api("POST", "users/nina/restart-server").status_code == 200
    try:
        data = broadcast(hub, admin_session, {"message": "who has it?"})
        rows = {r["user"]: r for r in data["deliveries"]}
        assert rows["nina"]["outcome"] == "failed"
        assert rows["nina"]["error"] == "notifications extension not installed on this server"
        assert rows["omar"]["outcome"] == "delivered" and rows["pia"]["outcome"] == "delivered"
    finally:
        hub.exec(engine, "nina", "rm -f /home/lab/.jupyter/jupyter_server_config.json")


def test_a_scheduled_broadcast_waits_for_its_time(hub: Hub, engine, running, admin_session) -> None:
    queued(hub, engine, "omar")  # empty what earlier tests left
    at = datetime.now(UTC) + timedelta(seconds=4)
    r = hub.as_user(
        admin_session,
        "POST",
        "notifications",
        json={"message": "at a time", "targets": {"users": ["omar"]}, "schedule": {"at": at.isoformat()}},
    )
    name = r.json()["name"]
    scheduled = wait_for(
        lambda: (d := hub.as_user(admin_session, "GET", f"notifications/{name}").json())["phase"] == "Scheduled" and d,
        5,
        "scheduled",
    )
    assert datetime.fromisoformat(scheduled["nextRun"]) == at.replace(microsecond=at.microsecond)
    assert [n["message"] for n in queued(hub, engine, "omar")] == []  # not yet
    done = wait_for(
        lambda: (d := hub.as_user(admin_session, "GET", f"notifications/{name}").json())["phase"] == "Completed" and d,
        15,
        "delivered at its time",
    )
    assert datetime.fromisoformat(done["runs"][0]["startedAt"]) >= at
    assert [n["message"] for n in queued(hub, engine, "omar")] == ["at a time"]
