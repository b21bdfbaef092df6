"""Trust: each attack of issue 11 tried on the real hub and engine, and refused, with nothing
lost or half-applied. (Items 7 to 10, inputs, are in test_abuse_inputs.py.)"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.harness import PASSWORD, ROOT, Hub, cleanup_docker, wait_for
from tests.helpers import apply_manifests, condition, events, gm, group_members, manifest, status

LAB = "jupyterhub-ds/lab:minimal"
HELLO = {"message": "hello", "targets": {"users": ["nobody"]}}  # a broadcast to nobody


# --- 1, 4, 11, 13: a fresh deployment, as `make up` starts it ---------------------------------

FRESH = "jhds-test-fresh"


@pytest.fixture(scope="module")
def fresh(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, str]]:
    """No admin password given, no admin opt-in for automation, and stray variables around."""
    cleanup_docker(engine, FRESH)
    state = tmp_path_factory.mktemp("fresh") / "state"
    hub = Hub(state_dir=state, platform=FRESH)
    stray = {"HUB_PORT": str(hub.port), "PORT": "1", "ADMIN": "mallory", "STATE_DIR": "/tmp/elsewhere"}
    hub.extra_env = {"JUPYTERHUB_ADMIN_PASSWORD": "", "HUB_AUTOMATION_ADMIN": "false", **stray}
    result = hub.up()
    try:
        assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"
        yield hub, result.stdout
    finally:
        hub.down()
        cleanup_docker(engine, FRESH)


def test_1_no_first_come_admin(hub: Hub, fresh: tuple[Hub, str]) -> None:
    # On the session's platform: signing up under the admin's name is refused...
    hub.signup("admin", password="mallorys-own-pass-123")
    session, _ = hub.login("admin", password="mallorys-own-pass-123")
    assert session is None
    session, error = hub.login("admin", password=PASSWORD)  # ...the configured password works
    assert session is not None, error
    # A fresh deployment without JUPYTERHUB_ADMIN_PASSWORD: a one-time password, printed.
    fresh_hub, stdout = fresh
    password_file = fresh_hub.state_dir / "admin-password"
    password = password_file.read_text().strip()
    assert password and password in stdout
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    fresh_hub.signup("admin", password="first-come-first-served")
    assert fresh_hub.login("admin", password="first-come-first-served")[0] is None
    session, error = fresh_hub.login("admin", password=password)
    assert session is not None, error
    assert session.get(f"{fresh_hub.url}hub/api/user", timeout=10).json()["admin"] is True
    # The shipped privileged manifest grants nobody.
    assert "members: []" in (ROOT / "manifests" / "privileged.yaml").read_text()


def test_4_automation_applies_manifests_and_nothing_more(fresh: tuple[Hub, str]) -> None:
    hub, _ = fresh
    assert hub.api("POST", "users", json={"usernames": ["intruder"]}).status_code == 403
    assert hub.api("POST", "groups/docker-privileged/users", json={"users": ["intruder"]}).status_code == 403
    assert hub.api("POST", "manifests", data=manifest("Broadcast", "from-automation", HELLO)).status_code == 200
    # A long but guessable token is refused before anything starts.
    env = {**hub.env, "HUB_AUTOMATION_TOKEN": "a" * 64}
    check = subprocess.run(
        [str(ROOT / ".venv/bin/hubctl"), "settings", "--check"], env=env, capture_output=True, text=True
    )
    assert check.returncode == 2 and "too predictable" in check.stderr and "a" * 64 not in check.stderr


def test_11_stray_variables_are_not_settings(fresh: tuple[Hub, str]) -> None:
    hub, _ = fresh  # HUB_PORT was the public port, ADMIN=mallory, STATE_DIR elsewhere: all ignored
    assert requests.get(f"{hub.url}hub/health", timeout=10).status_code == 200
    assert (hub.state_dir / "jupyterhub.sqlite").exists() and not Path("/tmp/elsewhere").exists()
    assert hub.api("GET", "users/mallory").status_code in (403, 404)


def test_13_the_state_folder_is_the_owners_only(fresh: tuple[Hub, str]) -> None:
    hub, _ = fresh
    assert stat.S_IMODE(hub.state_dir.stat().st_mode) == 0o700
    for name in ("jupyterhub.sqlite", "jupyterhub.log", "jupyterhub_cookie_secret", "admin-password"):
        mode = stat.S_IMODE((hub.state_dir / name).stat().st_mode)
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}"


# --- 2, 3: grants ------------------------------------------------------------------------------


def test_2_a_protected_group_is_never_granted_to_a_name_that_does_not_exist(hub: Hub) -> None:
    apply_manifests(hub, gm("operators-ahead", "platform-operators", ["phantom-op"]))
    ahead = ("GroupMembership", "operators-ahead")
    refused = wait_for(lambda: (s := status(hub, *ahead)).get("refusedUsers") == ["phantom-op"] and s, 15, "refused")
    assert condition(refused)["reason"] == "UnknownUsersRefused"
    hub.create_user("phantom-op")  # someone signs up under that name afterwards
    hub.api("POST", "resources/groupmembership/operators-ahead/reconcile")
    wait_for(lambda: status(hub, *ahead).get("lastHandledReconcileAt"), 15, "reconciled again")
    assert "phantom-op" not in (group_members(hub, "platform-operators") or set())
    hub.api("DELETE", "resources/groupmembership/operators-ahead")


def test_3_an_operator_who_may_broadcast_cannot_grant_root(hub: Hub, admin_session) -> None:
    bea = hub.approved_user(admin_session, "bea")
    hub.api("POST", "groups/platform-operators/users", json={"users": ["bea"]})
    try:
        ok = hub.as_user(bea, "POST", "manifests", data=manifest("Broadcast", "bea-says-hi", HELLO))
        assert ok.status_code == 200, ok.text
        for group in ("docker-privileged", "platform-operators"):
            r = hub.as_user(bea, "POST", "manifests", data=gm(f"bea-{group}", group, ["bea"]))
            assert r.status_code == 403 and "hub admins" in r.json()["message"], r.text
        assert "bea" not in (group_members(hub, "docker-privileged") or set())
        assert hub.api("GET", "resources/groupmembership/bea-docker-privileged").status_code == 404
        # An ordinary group is an operator's to manage.
        r = hub.as_user(bea, "POST", "manifests", data=gm("bea-team", "bea-team", ["bea"]))
        assert r.status_code == 200, r.text
        hub.as_user(bea, "DELETE", "resources/groupmembership/bea-team")
    finally:
        hub.api("DELETE", "groups/platform-operators/users", json={"users": ["bea"]})


# --- 5: the socket, engine-wide ----------------------------------------------------------------


def test_5_siblings_with_the_socket_a_parent_of_it_privileged_or_host_pid_are_stopped(hub: Hub, engine) -> None:
    labels = {"io.jupyterhub-ds.platform": hub.platform}  # for clean-up only: no user, no server
    common = {"command": ["sleep", "300"], "detach": True, "network_mode": "none", "labels": labels}
    attempts = {
        "escape-run": {"volumes": {"/run": {"bind": "/host-run", "mode": "ro"}}},
        "escape-root": {"volumes": {"/": {"bind": "/host", "mode": "ro"}}},
        "escape-priv": {"privileged": True},
        "escape-pid": {"pid_mode": "host"},
    }
    harmless = engine.containers.run(LAB, name="harmless-data", volumes={"/tmp": {"bind": "/data"}}, **common)
    started = [engine.containers.run(LAB, name=name, **common, **extra) for name, extra in attempts.items()]
    try:
        for c in started:
            wait_for(lambda c=c: c.reload() or c.status != "running", 20, f"{c.name} stopped")

        # The event is written once the engine's stop returns: after the status changed.
        def stopped() -> set[str]:
            return {e["name"] for e in events(hub, reason="ContainerStopped") if e["kind"] == "EngineAccess"}

        wait_for(lambda: set(attempts) <= stopped(), 15, "a ContainerStopped event for each")
        harmless.reload()
        assert harmless.status == "running"  # nothing that gives power over the host: left alone
    finally:
        for c in [*started, harmless]:
            c.remove(force=True)


# --- 6: usernames -------------------------------------------------------------------------------


def signed_up(hub: Hub, name: str) -> bool:
    """NativeAuthenticator's own record of a sign-up (it exists before any approval)."""
    with sqlite3.connect(hub.state_dir / "jupyterhub.sqlite") as db:
        return db.execute("select count(*) from users_info where username = ?", (name,)).fetchone()[0] > 0


def test_6_usernames_follow_the_platform_rule(hub: Hub) -> None:
    hub.signup("plain-name")
    assert signed_up(hub, "plain-name")  # (the check below sees a sign-up when there is one)
    for name in ("{mallory}", "eve{x}", "bob\x07", "al ice"):
        hub.signup(name)
        assert not signed_up(hub, name), name
        assert hub.api("GET", f"users/{requests.utils.quote(name, safe='')}").status_code == 404, name
    r = hub.api("POST", "manifests", data=gm("braces", "braces", ["{admin}"]))
    assert r.status_code == 422


# --- 12, 14 -----------------------------------------------------------------------------------


def test_12_one_pending_request_per_user(hub: Hub, admin_session) -> None:
    flo = hub.approved_user(admin_session, "flo")
    pid = hub.reconciler_details()["pid"]
    os.kill(pid, signal.SIGSTOP)  # the first request stays pending
    try:
        codes = [
            hub.as_user(flo, "POST", "users/flo/volume-resets", json={"volumes": ["cache"]}).status_code
            for _ in range(20)
        ]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert codes.count(202) == 1 and codes.count(409) == 19
    resets = hub.api("GET", "resources/volumereset").json()["items"]
    assert len([r for r in resets if r["spec"]["user"] == "flo"]) == 1


def test_14_health_through_the_proxy_says_only_ok(hub: Hub) -> None:
    base = f"{hub.url}services/reconciler/"
    health = requests.get(base + "health", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert requests.get(base + "metrics", timeout=10).status_code == 403
    assert requests.get(base + "health/details", timeout=10).status_code == 403
    auth = {"Authorization": f"token {hub.token}"}
    assert "jhds_reconciles_total" in requests.get(base + "metrics", headers=auth, timeout=10).text
