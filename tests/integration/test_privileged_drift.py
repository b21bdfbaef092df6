"""The Docker socket follows membership continuously: grants, revocations, drift, the group."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator

import pytest

from tests.harness import Hub, wait_for
from tests.helpers import SOCKET, has_socket, running_container
from vocabulary import naming

MANIFEST = "privileged.yaml"


def write_membership(hub: Hub, members: list[str]) -> None:
    (hub.manifests_dir / MANIFEST).write_text(
        textwrap.dedent(
            f"""\
            apiVersion: jupyterhub-ds/v1
            kind: GroupMembership
            metadata: {{name: docker-privileged}}
            spec: {{group: docker-privileged, members: {json.dumps(members)}, prune: true}}
            """
        )
    )


def members(hub: Hub) -> set[str] | None:
    r = hub.api("GET", f"groups/{naming.PRIVILEGED_GROUP}")
    return set(r.json()["users"]) if r.status_code == 200 else None


def privileged_events(hub: Hub) -> list[dict]:
    items = hub.api("GET", "events", params={"limit": 500}).json()["items"]
    return [e for e in items if e["kind"] == "PrivilegedAccess"]


@pytest.fixture(scope="module")
def pam(hub: Hub, engine) -> Iterator[str]:
    for user in ("pam", "bo"):
        hub.create_user(user)
    write_membership(hub, ["pam"])
    wait_for(lambda: members(hub) == {"pam"}, 10, "pam in docker-privileged")
    hub.start_server("pam")
    hub.start_server("bo")
    yield "pam"
    (hub.manifests_dir / MANIFEST).unlink(missing_ok=True)
    # The session hub goes on to other modules (in either lane's order): a GroupMembership
    # left managing docker-privileged with prune would take their members out of it.
    hub.api("DELETE", "resources/groupmembership/docker-privileged")
    gone = lambda: hub.api("GET", "resources/groupmembership/docker-privileged").status_code == 404  # noqa: E731
    wait_for(gone, 30, "the docker-privileged GroupMembership deleted")
    for user in ("pam", "bo"):
        hub.stop_server(user)


def test_revocation_restarts_the_server_without_the_socket(hub: Hub, engine, pam: str) -> None:
    before = running_container(engine, hub, pam)
    assert has_socket(before)
    hub.exec(engine, pam, "echo mine > /home/lab/keep.txt")
    t0 = time.monotonic()
    write_membership(hub, [])  # removed from the manifest
    wait_for(lambda: members(hub) == set(), 10, "pam removed from the group")

    def recreated():
        c = running_container(engine, hub, pam)
        return c if c is not None and c.id != before.id else None

    after = wait_for(recreated, 30, "pam's server recreated")  # well within one resync (10 s) + a restart
    ready = wait_for(lambda: hub.api("GET", f"users/{pam}").json()["servers"].get("", {}).get("ready"), 60, "ready")
    delay = time.monotonic() - t0
    print(f"revocation: manifest edited -> socket gone and server back in {delay:.1f} s")
    assert ready and not has_socket(after)
    assert after.labels[naming.LABEL_SOCKET] == "false"
    assert hub.exec(engine, pam, "cat /home/lab/keep.txt").strip() == "mine"
    reasons = [e["reason"] for e in privileged_events(hub) if pam in e["message"]]
    assert "PrivilegedDrift" in reasons and "RestartRequested" in reasons


def test_non_member_never_has_the_socket_even_when_the_group_is_recreated(hub: Hub, engine, pam: str) -> None:
    assert not has_socket(running_container(engine, hub, "bo"))
    assert hub.api("DELETE", f"groups/{naming.PRIVILEGED_GROUP}").status_code == 204
    wait_for(lambda: members(hub) is not None, 15, "the group recreated within one resync")
    assert members(hub) == set()  # with the membership the manifest declares
    hub.stop_server("bo")
    hub.start_server("bo")
    assert not has_socket(running_container(engine, hub, "bo"))
    report = json.loads(hub.hubctl("get", "privileged", "-o", "json").stdout)
    rows = {r["user"]: r for r in report["servers"]}
    assert rows["bo"]["has_socket"] is False and rows["bo"]["drift"] is None


def test_grant_is_reported_and_applied_at_the_next_start(hub: Hub, engine, pam: str) -> None:
    write_membership(hub, ["bo"])
    wait_for(lambda: members(hub) == {"bo"}, 10, "bo added")
    wait_for(
        lambda: any(e["reason"] == "GrantPending" and "bo/" in e["message"] for e in privileged_events(hub)),
        10,
        "the pending grant reported",
    )
    assert not has_socket(running_container(engine, hub, "bo"))  # nothing restarted for a grant
    table = hub.hubctl("get", "privileged")
    assert table.returncode == 0 and "membership-without-socket" in table.stdout
    hub.stop_server("bo")
    hub.start_server("bo")
    assert has_socket(running_container(engine, hub, "bo"))
    write_membership(hub, [])


def test_hand_edit_while_gitops_prunes_is_reported_as_a_conflict(hub: Hub, engine, pam: str) -> None:
    wait_for(lambda: members(hub) == set(), 10, "the manifest's empty list applied")
    hub.api("POST", f"groups/{naming.PRIVILEGED_GROUP}/users", json={"users": ["pam"]})  # an admin, by hand

    def conflict():
        status = hub.api("GET", "resources/groupmembership/docker-privileged").json()["status"]
        found = [c for c in status["conditions"] if c["type"] == "Conflict" and c["status"] == "True"]
        return found[0] if found else None

    condition = wait_for(conflict, 15, "a Conflict condition (within one resync)")
    assert condition["reason"] == "UnlistedMembers" and "pam" in condition["message"]
    assert members(hub) == set()


def test_container_outside_the_hub_with_the_socket_is_drift(hub: Hub, engine, pam: str) -> None:
    rogue = engine.containers.run(
        "jupyterhub-ds/lab:minimal",
        ["sleep", "300"],
        detach=True,
        name="jhds-test-rogue",
        network_mode="none",
        labels={naming.LABEL_PLATFORM: hub.platform, naming.LABEL_USER: "mallory", naming.LABEL_SOCKET: "false"},
        volumes={SOCKET: {"bind": SOCKET, "mode": "rw"}},
    )
    try:
        wait_for(lambda: rogue.reload() or rogue.status != "running", 15, "the rogue container stopped")

        # The events are written once the engine's stop returns: after the status changed.
        def messages() -> list[str]:
            return [e["message"] for e in privileged_events(hub)]

        wait_for(lambda: any(m.startswith("stopped jhds-test-rogue") for m in messages()), 15, "the stop's event")
        assert any("jhds-test-rogue" in m and "not in docker-privileged" in m for m in messages())
    finally:
        rogue.remove(force=True)


@pytest.fixture
def report_hub(own_platforms) -> Hub:
    return own_platforms.platform("report", {"PRIVILEGED_DRIFT_POLICY": "report", "RESYNC_SECONDS": "3"})


def test_report_policy_changes_nothing_and_reports(report_hub: Hub, engine) -> None:
    hub = report_hub
    hub.create_user("ria")
    hub.api("POST", f"groups/{naming.PRIVILEGED_GROUP}/users", json={"users": ["ria"]})
    hub.start_server("ria")
    before = running_container(engine, hub, "ria")
    assert has_socket(before)
    hub.api("DELETE", f"groups/{naming.PRIVILEGED_GROUP}/users", json={"users": ["ria"]})  # by hand
    wait_for(
        lambda: any(e["reason"] == "PrivilegedDrift" and "ria" in e["message"] for e in privileged_events(hub)),
        15,
        "drift reported",
    )
    time.sleep(2)
    assert running_container(engine, hub, "ria").id == before.id  # not restarted
    report = json.loads(hub.hubctl("get", "privileged", "-o", "json").stdout)
    (row,) = [r for r in report["servers"] if r["user"] == "ria"]
    assert row["drift"] == "socket-without-membership" and row["has_socket"] and not row["member"]
    assert report["policy"] == "report"
