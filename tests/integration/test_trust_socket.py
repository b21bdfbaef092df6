"""Issue 22, items 1 and 3, on the real hub, engine and labs: no scope short of admin:groups
reaches what runs beside the Docker socket, and the restart that takes the socket away is
the platform's own (nobody cancels it, nobody takes its name first).

The attacker is a token with exactly the `automation` role's platform scope
(`custom:jupyterhub-ds:write:resources`, no admin:groups), minted by the admin for itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator

import docker
import pytest
import requests

from tests.harness import Hub, wait_for
from tests.helpers import has_socket, remove, running_container
from vocabulary import naming, scopes

LAB = "jupyterhub-ds/lab:minimal"
TEAM = "trust-team"
Api = Callable[..., requests.Response]


def doc(kind: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "jupyterhub-ds/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def body(*docs: dict) -> str:
    return "\n---\n".join(json.dumps(d) for d in docs)


@pytest.fixture(scope="module")
def writer(hub: Hub, admin_session) -> Api:
    """The REST API with a token holding the automation role's scope and nothing more."""
    r = hub.as_user(
        admin_session,
        "POST",
        "users/admin/tokens",
        json={"scopes": [scopes.WRITE], "note": "as the automation role", "expires_in": 3600},
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    whoami = requests.get(f"{hub.url}hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
    assert scopes.PROTECTED_GROUPS_SCOPE not in whoami.json()["scopes"]

    def call(method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {token}"}
        return requests.request(method, f"{hub.url}hub/api/{path}", headers=headers, timeout=60, **kwargs)

    return call


@pytest.fixture(scope="module")
def evil_image(engine: docker.DockerClient, hub: Hub) -> Iterator[str]:
    tag = f"{hub.platform}-evil:latest"  # the lab image under a name only this test uses
    engine.images.get(LAB).tag(tag)
    yield tag
    engine.images.remove(tag, noprune=True)


def env_of(c) -> dict[str, str]:
    return dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])


def set_members(hub: Hub, group: str, users: list[str], add: bool = True) -> None:
    hub.api("POST", f"groups/{group}")  # 201, or 409 if it exists
    r = hub.api("POST" if add else "DELETE", f"groups/{group}/users", json={"users": users})
    assert r.status_code == 200, r.text


# --- item 1 -------------------------------------------------------------------------------------


def test_1_write_policies_cannot_reach_what_runs_beside_the_socket(
    hub: Hub, engine: docker.DockerClient, writer: Api, evil_image: str
) -> None:
    for user in ("sam", "tim"):
        hub.create_user(user)
    set_members(hub, TEAM, ["sam", "tim"])
    set_members(hub, naming.PRIVILEGED_GROUP, ["sam"])  # by a hub admin
    try:
        # A policy of another group, at the highest priority, with an image and LD_PRELOAD...
        spec = {
            "groups": [TEAM],
            "priority": 1000,
            "environment": {"LD_PRELOAD": "", "TRUST_INJECTED": "1"},
            "images": [evil_image, LAB],
        }
        r = writer("POST", "manifests", data=body(doc("GroupPolicy", "trust-evil", spec)))
        assert r.status_code == 200, r.text  # (operators keep their power over other groups)
        # ...never reaches the member who gets the socket: image and environment are the admins'.
        hub.start_server("sam")
        sam = running_container(engine, hub, "sam")
        assert has_socket(sam)
        assert sam.attrs["Config"]["Image"] == LAB and "TRUST_INJECTED" not in env_of(sam), env_of(sam)
        effective = hub.api("GET", "users/sam/effective-policy").json()
        assert effective["effective"]["withheld"] == ["trust-evil"] and effective["dockerSocket"] is True
        # A member of the team without the socket gets the policy as written.
        hub.start_server("tim")
        tim = running_container(engine, hub, "tim")
        assert not has_socket(tim)
        assert tim.attrs["Config"]["Image"] == evil_image and env_of(tim)["TRUST_INJECTED"] == "1"
        # A policy naming docker-privileged (alone or among others) needs admin:groups.
        for groups in (["docker-privileged"], [TEAM, "docker-privileged"]):
            spec = {"groups": groups, "environment": {"LD_PRELOAD": ""}}
            r = writer("POST", "manifests", data=body(doc("GroupPolicy", "trust-direct", spec)))
            assert r.status_code == 403 and "needs admin:groups" in r.json()["message"], r.text
    finally:
        hub.api("DELETE", "resources/grouppolicy/trust-evil")
        for user in ("sam", "tim"):
            hub.stop_server(user)
        set_members(hub, naming.PRIVILEGED_GROUP, ["sam"], add=False)
        remove(hub, groups=[TEAM])


def test_1_prune_replace_and_delete_need_what_delete_needs(hub: Hub, writer: Api) -> None:
    protected = [
        doc("GroupPolicy", "trust-priv", {"groups": ["docker-privileged"], "environment": {"SAFE": "1"}}),
        doc("GroupMembership", "trust-ops", {"group": scopes.OPERATORS_GROUP, "members": []}),
    ]
    r = hub.api("POST", "manifests", params={"source": "trust.yaml"}, data=body(*protected))  # a hub admin
    assert r.status_code == 200, r.text
    try:
        harmless = doc("GroupPolicy", "trust-other", {"groups": [TEAM], "environment": {"A": "1"}})
        r = writer("POST", "manifests", params={"source": "trust.yaml", "prune": "true"}, data=body(harmless))
        assert r.status_code == 403, r.text
        message = r.json()["message"]
        assert "grouppolicy/trust-priv: not pruned" in message and "groupmembership/trust-ops: not pruned" in message
        assert "needs admin:groups" in message and "nothing was applied" in message
        assert hub.api("GET", "resources/grouppolicy/trust-other").status_code == 404  # atomic
        # Re-pointing them at an unprotected group is deleting them: refused the same way.
        moved = doc("GroupMembership", "trust-ops", {"group": TEAM, "members": []})
        r = writer("POST", "manifests", data=body(moved))
        assert r.status_code == 403 and "groupmembership/trust-ops: not replaced" in r.json()["message"], r.text
        assert writer("DELETE", "resources/grouppolicy/trust-priv").status_code == 403
        assert writer("POST", "resources/grouppolicy/trust-priv/suspend").status_code == 403
        for name, kind in (("trust-priv", "grouppolicy"), ("trust-ops", "groupmembership")):
            assert hub.api("GET", f"resources/{kind}/{name}").status_code == 200, name
    finally:
        hub.api("DELETE", "resources/grouppolicy/trust-priv")
        hub.api("DELETE", "resources/groupmembership/trust-ops")


# --- item 3 -------------------------------------------------------------------------------------


def revoke_and_watch(hub: Hub, engine: docker.DockerClient, user: str, attack: Callable[[], None]):
    """Take `user` out of docker-privileged by hand (found at the next resync, 10 s here);
    run `attack` at every poll until the server is back; the new container."""
    old = running_container(engine, hub, user)
    assert old is not None and has_socket(old)
    set_members(hub, naming.PRIVILEGED_GROUP, [user], add=False)

    def back():
        attack()
        c = running_container(engine, hub, user)
        ready = (hub.api("GET", f"users/{user}").json()["servers"].get("") or {}).get("ready")
        return c if c is not None and c.id != old.id and ready else None

    return wait_for(back, 90, f"{user}'s server back without the socket", interval=0.1)


def old_revocation_name(user: str, container_id: str) -> str:
    """The predictable name the watch used to give its ServerRestart (before issue 22)."""
    digest = hashlib.sha256(f"{user}//{container_id}".encode()).hexdigest()[:10]
    return f"revoke-{naming.slug(user)}-{digest}"


def granted_server(hub: Hub, engine: docker.DockerClient, user: str) -> None:
    set_members(hub, naming.PRIVILEGED_GROUP, [user])
    hub.start_server(user)
    assert has_socket(running_container(engine, hub, user))


def test_3_the_user_cannot_cancel_the_revocation(hub: Hub, engine: docker.DockerClient, admin_session) -> None:
    session = hub.approved_user(admin_session, "uma")
    granted_server(hub, engine, "uma")
    seen: list[str] = []

    def cancel_whatever_is_pending() -> None:  # what uma can do from her home page
        for item in hub.as_user(session, "GET", "users/uma/server-restarts").json().get("items", []):
            seen.append(item["name"])
            hub.as_user(session, "DELETE", f"users/uma/server-restarts/{item['name']}")

    try:
        new = revoke_and_watch(hub, engine, "uma", cancel_whatever_is_pending)
        assert not has_socket(new)
        assert seen == [], f"the revocation was uma's to cancel: {seen}"

        def reasons() -> set[str]:
            events = hub.api("GET", "events", params={"limit": 500}).json()["items"]
            return {e["reason"] for e in events if e["kind"] == "PrivilegedAccess" and e["name"] == "uma"}

        # (the key notices the server ready at its next step, within a second)
        wait_for(lambda: "ServerRestarted" in reasons(), 15, "the restart's end recorded")
        assert {"PrivilegedDrift", "RestartRequested"} <= reasons()
    finally:
        hub.stop_server("uma")
        session.close()


def test_3_nobody_can_take_the_revocations_name_first(hub: Hub, engine: docker.DockerClient, writer: Api) -> None:
    for user in ("vera", "walt"):
        hub.create_user(user)
    granted_server(hub, engine, "vera")
    # An operator takes the name the restart would have, for a server that is not running
    # (walt's): the squatted request fails at once and, once started, is immutable.
    name = old_revocation_name("vera", running_container(engine, hub, "vera").id)
    squat = doc("ServerRestart", name, {"user": "walt"})
    assert writer("POST", "manifests", data=body(squat)).status_code == 200
    phase = lambda: hub.api("GET", f"resources/serverrestart/{name}").json().get("status", {}).get("phase")  # noqa: E731
    wait_for(lambda: phase() == "Failed", 30, "the squatted request failed (started, so immutable)")
    restarts = lambda: hub.api("GET", "resources/serverrestart").json()["items"]  # noqa: E731

    def delete_any_of_veras() -> None:  # what an operator with write:requests can do
        for item in restarts():
            if item["spec"]["user"] == "vera":
                writer("DELETE", f"resources/serverrestart/{item['metadata']['name']}")

    try:
        new = revoke_and_watch(hub, engine, "vera", delete_any_of_veras)
        assert not has_socket(new)
        assert [i["metadata"]["name"] for i in restarts() if i["spec"]["user"] == "vera"] == []
    finally:
        hub.api("DELETE", f"resources/serverrestart/{name}")
        hub.stop_server("vera")
