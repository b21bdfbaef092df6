"""ServerStop on the session's platform (issue 27, bulk actions): two members of a group and
a non-member run minimal labs; a ServerStop of the group with `warnBefore: 3s` puts its
notice (the reason, the stop time) in both members' labs before anything stops, then stops
exactly those two: the non-member keeps running and heard nothing. The status ends
`Completed` with each target `Stopped`, with its events; `hubctl get serverstops` shows it.
The Servers page offers the form to an operator; `POST /hub/api/serverstops` without the
scope of requests is a 403.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote

import docker
import pytest
import requests

from tests.harness import Hub, lab_queue, wait_for
from tests.helpers import apply, events, running_container, status

GROUP = "ss-course"
MEMBERS = ["ss-amy", "ss-ben"]
OTHER = "ss-cid"
NAME = "ss-maintenance"
REASON = "Host maintenance from 18:00; back by 19:00."


@pytest.fixture
def course(hub: Hub) -> Iterator[None]:
    for user in [*MEMBERS, OTHER]:
        hub.create_user(user)
    assert hub.api("POST", f"groups/{GROUP}").status_code in (201, 409)
    assert hub.api("POST", f"groups/{GROUP}/users", json={"users": MEMBERS}).status_code == 200
    for user in [*MEMBERS, OTHER]:  # started together, waited for one by one
        assert hub.api("POST", f"users/{quote(user)}/server").status_code in (201, 202)
    for user in [*MEMBERS, OTHER]:
        hub.wait_ready(user)
    try:
        yield
    finally:
        hub.api("DELETE", f"resources/serverstop/{NAME}")
        for user in [*MEMBERS, OTHER]:
            if hub.api("GET", f"users/{user}").json().get("servers"):
                hub.stop_server(user)
        hub.api("DELETE", f"groups/{GROUP}")


def notices(hub: Hub, engine: docker.DockerClient, user: str) -> list[str]:
    """The ServerStop notices the lab holds (read on the lab's own port: not activity)."""
    return [
        n.get("message", "") for n in lab_queue(hub, engine, user, as_activity=False) if REASON in n.get("message", "")
    ]


def test_serverstop_warns_then_stops_exactly_the_group(hub: Hub, engine: docker.DockerClient, course: None) -> None:
    t0 = time.monotonic()
    apply(hub, "ServerStop", NAME, {"selector": {"groups": [GROUP]}, "warnBefore": "3s", "reason": REASON})
    heard: dict[str, list[str]] = {user: [] for user in MEMBERS}

    def all_told() -> bool:  # reading empties the queue: what was read is kept
        for user in MEMBERS:
            if not heard[user]:
                heard[user] += notices(hub, engine, user)
        return all(heard.values())

    wait_for(all_told, 10, "the notice in both members' labs", interval=0.1)
    told = time.monotonic() - t0
    assert all(running_container(engine, hub, user) for user in MEMBERS)  # told first, still running
    stop_at = datetime.fromisoformat(status(hub, "ServerStop", NAME)["stopAt"].replace("Z", "+00:00"))
    for user in MEMBERS:
        (text,) = heard[user]
        assert text.startswith("Your server will be stopped in about 3 s") and f"(at {stop_at:%H:%M} UTC)" in text

    final = wait_for(
        lambda: (s := status(hub, "ServerStop", NAME)).get("phase") in ("Completed", "Failed") and s, 40, "the stop"
    )
    seconds = time.monotonic() - t0
    assert final["phase"] == "Completed", final
    assert {t["user"]: t["state"] for t in final["targets"]} == dict.fromkeys(MEMBERS, "Stopped")
    assert (final["stopped"], final["gone"], final["failed"]) == (2, 0, 0)
    for target in final["targets"]:
        assert datetime.fromisoformat(target["stoppedAt"].replace("Z", "+00:00")) >= stop_at, target
        assert target["serverStarted"], target  # what tells a server started since from the one chosen
    for user in MEMBERS:
        assert hub.api("GET", f"users/{user}").json()["servers"] == {}, user
        assert running_container(engine, hub, user) is None, user
    assert hub.api("GET", f"users/{OTHER}").json()["servers"][""]["ready"]  # not selected: untouched
    assert running_container(engine, hub, OTHER) is not None
    assert notices(hub, engine, OTHER) == []
    reasons = [e["reason"] for e in events(hub, "ServerStop", NAME)]
    assert {"Started", "Warned", "Completed"} <= set(reasons) and reasons.count("Stopped") == 2, reasons

    listed = hub.hubctl("get", "serverstops")
    assert listed.returncode == 0, listed.stderr
    header, row = next((lines[0], line) for lines in [listed.stdout.splitlines()] for line in lines if NAME in line)
    assert "TARGETS" in header and "STOPPED" in header and "Completed" in row, listed.stdout
    print(f"ServerStop of 2 servers (warn 3 s): notices read after {told:.1f} s, completed in {seconds:.1f} s")


def test_the_servers_page_offers_the_form_and_the_api_needs_the_scope(
    hub: Hub, admin_session: requests.Session
) -> None:
    page = admin_session.get(f"{hub.url}hub/servers", timeout=30).text
    form = page[page.find('<p id="hub-limits">') : page.find('id="effective-form"')]
    assert 'id="stop-form"' in form and "Stop servers&hellip;" in form and 'maxlength="140"' in form, form
    dee = hub.approved_user(admin_session, "ss-dee")  # no platform scope
    r = hub.as_user(dee, "POST", "serverstops", json={"selector": {"all": True}, "reason": "x"})
    assert r.status_code == 403 and "custom:jupyterhub-ds:write:requests" in r.json()["message"], r.text
    r = hub.as_user(admin_session, "POST", "serverstops", json={"selector": {}, "reason": "x" * 141})
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (
        "selector: set exactly one of drifted: true, groups, users or all: true; "
        "reason: must be at most 140 characters (got 141)"
    )
