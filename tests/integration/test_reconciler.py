"""The reconciler on real parts: hubctl -> hub REST API -> store -> loop -> hub groups."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from reconciler.api import REGISTRY
from tests.harness import Hub, wait_for
from tests.helpers import condition, events, gm, group_members, remove

# What the tests make (each a GroupMembership of its group's name, some from files in the
# manifests folder), taken off at the end: later tests build on earlier ones (prune expects team-a).
GROUPS = ["team-a", "analysts", "good-one", "keep-me", "prune-me", "gitops-owned", "haunted", "while-dead"]
CHURN = [f"churn-{n}" for n in range(3)]
FILES = ["analysts.yaml", "good.yaml", "bad.yaml", "gitops-owned.yaml"]


def get_json(hub: Hub, kind: str, name: str) -> dict:
    result = hub.hubctl("get", kind, name, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def converged(hub: Hub, kind: str, name: str) -> dict | None:
    obj = get_json(hub, kind, name)
    status = obj.get("status") or {}
    return obj if status.get("observedGeneration") == obj["metadata"]["generation"] else None


@pytest.fixture(scope="module", autouse=True)
def left_as_found(hub: Hub) -> Iterator[None]:
    yield
    names = [*GROUPS, *CHURN]
    remove(hub, resources=[("GroupMembership", name) for name in names], groups=names, files=FILES)


@pytest.fixture(scope="module")
def users(hub: Hub) -> list[str]:
    names = ["ana", "ben", "cy", "dee"]
    for name in names:
        hub.create_user(name)
    return names


def test_apply_then_get_shows_ready_and_the_group_matches(hub: Hub, users: list[str], tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(gm("team-a", "team-a", ["ana", "ben"]))
    result = hub.hubctl("apply", "-f", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "groupmembership/team-a created"

    obj = wait_for(lambda: converged(hub, "groupmembership", "team-a"), 5, "team-a converged")
    assert obj["status"]["phase"] == "Ready"
    ready = condition(obj["status"])
    assert ready["status"] == "True"
    assert group_members(hub, "team-a") == {"ana", "ben"}

    # Re-applying the same file is a no-op.
    again = hub.hubctl("apply", "-f", str(tmp_path))
    assert again.stdout.strip() == "groupmembership/team-a unchanged"
    listing = hub.hubctl("get", "groupmembership")
    assert listing.returncode == 0
    assert "team-a" in listing.stdout and "Ready" in listing.stdout

    # Someone adds a member by hand; prune: true takes the group back to the list.
    hub.api("POST", "groups/team-a/users", json={"users": ["cy"]})
    hub.api("POST", "groups/team-a/users", json={"users": ["cy"]})
    path.write_text(gm("team-a", "team-a", ["ana", "dee"]))
    assert hub.hubctl("apply", "-f", str(tmp_path)).stdout.strip() == "groupmembership/team-a configured"
    wait_for(lambda: group_members(hub, "team-a") == {"ana", "dee"}, 5, "team-a = ana, dee")
    obj = wait_for(lambda: converged(hub, "groupmembership", "team-a"), 5, "generation 2 observed")
    assert obj["metadata"]["generation"] == 2
    # cy went either with the new spec or, first, at a resync (a hand edit: a Conflict).
    removed = " ".join(e["message"] for e in events(hub, "GroupMembership", "team-a", "MembersRemoved"))
    assert "ben" in removed and "cy" in removed
    assert "ben" in obj["status"]["lastChange"]["removed"]

    describe = hub.hubctl("describe", "groupmembership", "team-a")
    assert describe.returncode == 0
    assert "MembersRemoved" in describe.stdout and "Conditions:" in describe.stdout


def test_gitops_edit_converges_within_5_s(hub: Hub, users: list[str]) -> None:
    path = hub.manifests_dir / "analysts.yaml"
    path.write_text(gm("analysts", "analysts", ["ana"]))
    wait_for(lambda: group_members(hub, "analysts") == {"ana"}, 5, "analysts created from the folder")
    t0 = time.monotonic()
    path.write_text(gm("analysts", "analysts", ["ana", "cy"]))
    wait_for(lambda: group_members(hub, "analysts") == {"ana", "cy"}, 5, "the edit applied")
    print(f"gitops edit -> group changed: {time.monotonic() - t0:.2f} s")
    obj = get_json(hub, "groupmembership", "analysts")
    assert obj["metadata"]["annotations"]["jupyterhub-ds/owner"] == "gitops"
    assert obj["metadata"]["annotations"]["jupyterhub-ds/source"] == "analysts.yaml"


def test_gitops_bad_file_is_reported_and_the_rest_applied(hub: Hub, users: list[str]) -> None:
    (hub.manifests_dir / "good.yaml").write_text(gm("good-one", "good-one", ["ben"]))
    bad = gm("bad-one", "bad-one", ["ben"]).replace("prune:", "prnue:")
    (hub.manifests_dir / "bad.yaml").write_text(bad)
    wait_for(lambda: group_members(hub, "good-one") == {"ben"}, 5, "good file applied")

    def bad_event() -> list[dict]:
        return [e for e in events(hub) if e["kind"] == "Manifest" and e["name"] == "bad.yaml"]

    (event,) = wait_for(bad_event, 5, "an event for bad.yaml")
    assert event["type"] == "Warning" and event["reason"] == "InvalidManifest"
    assert "bad.yaml:8: spec.prnue" in event["message"]
    assert group_members(hub, "bad-one") is None
    assert hub.hubctl("get", "groupmembership", "bad-one").returncode == 1
    assert "bad.yaml:8" in hub.log_path.read_text()
    (hub.manifests_dir / "bad.yaml").unlink()


def test_mixed_valid_and_invalid_apply_applies_nothing(hub: Hub, users: list[str], tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(gm("mixed-ok", "mixed-ok", ["ana"]))
    long = "x" * 141
    (tmp_path / "b.yaml").write_text(
        f"apiVersion: jupyterhub-ds/v1\nkind: Broadcast\nmetadata: {{name: too-long}}\nspec:\n  message: {long}\n"
    )
    result = hub.hubctl("apply", "-f", str(tmp_path))
    assert result.returncode == 1
    assert "b.yaml:5: spec.message" in result.stderr
    assert hub.hubctl("get", "groupmembership", "mixed-ok").returncode == 1
    # The server refuses the same on its own (a client that skips validation).
    body = (tmp_path / "a.yaml").read_text() + "---\n" + (tmp_path / "b.yaml").read_text()
    r = hub.api("POST", "manifests", data=body)
    assert r.status_code == 422
    assert r.json()["errors"][0]["line"] == 14 and r.json()["errors"][0]["path"] == "spec.message"
    assert hub.api("GET", "resources/groupmembership/mixed-ok").status_code == 404


def test_prune_removes_only_what_the_owner_applied(hub: Hub, users: list[str], tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(gm("keep-me", "keep-me", ["ana"]))
    (tmp_path / "two.yaml").write_text(gm("prune-me", "prune-me", ["ana"]))
    assert hub.hubctl("apply", "-f", str(tmp_path)).returncode == 0
    (hub.manifests_dir / "gitops-owned.yaml").write_text(gm("gitops-owned", "gitops-owned", ["ana"]))
    wait_for(lambda: hub.api("GET", "resources/groupmembership/gitops-owned").status_code == 200, 5, "gitops")
    (tmp_path / "two.yaml").unlink()
    result = hub.hubctl("apply", "--prune", "-f", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["groupmembership/keep-me unchanged", "groupmembership/prune-me pruned"]
    names = {i["metadata"]["name"] for i in hub.api("GET", "resources/groupmembership").json()["items"]}
    assert {"keep-me", "gitops-owned", "team-a"} <= names
    assert "prune-me" not in names


def test_unknown_user_is_a_condition_not_a_retry_loop(hub: Hub, users: list[str], tmp_path: Path) -> None:
    (tmp_path / "ghost.yaml").write_text(gm("haunted", "haunted", ["ana", "ghost"]))
    assert hub.hubctl("apply", "-f", str(tmp_path)).returncode == 0
    obj = wait_for(lambda: converged(hub, "groupmembership", "haunted"), 5, "haunted observed")
    assert group_members(hub, "haunted") == {"ana"}
    ready = condition(obj["status"])
    assert (ready["status"], ready["reason"]) == ("False", "UnknownUsers")
    assert "ghost" in ready["message"]
    time.sleep(2)
    auth = {"Authorization": f"token {hub.token}"}
    metrics = requests.get(hub.reconciler_url + "metrics", headers=auth, timeout=10).text
    assert "jhds_reconciles_total" in metrics
    assert 'jhds_reconciles_total{kind="GroupMembership",result="retry"}' not in metrics
    # ghost appears later: a resync (10 s here) adds them, and the condition clears.
    hub.create_user("ghost")
    wait_for(lambda: group_members(hub, "haunted") == {"ana", "ghost"}, 15, "ghost added at a resync")
    obj = wait_for(
        lambda: (o := get_json(hub, "groupmembership", "haunted"))["status"]["unknownUsers"] == [] and o, 5, "status"
    )
    ready = condition(obj["status"])
    assert ready["status"] == "True" and obj["status"]["unknownUsers"] == []


def test_health_and_metrics(hub: Hub) -> None:
    # For anyone: ok or not, and nothing else (no pid).
    assert requests.get(hub.reconciler_url + "health", timeout=10).json() == {"status": "ok"}
    assert requests.get(hub.reconciler_url + "health/details", timeout=10).status_code == 403
    assert requests.get(hub.reconciler_url + "metrics", timeout=10).status_code == 403
    bad = {"Authorization": "token not-a-token"}
    assert requests.get(hub.reconciler_url + "metrics", headers=bad, timeout=10).status_code == 403
    health = hub.reconciler_details()
    assert health["status"] == "ok" and health["pid"] > 0
    # Every kind has its controller running, and the built-in watches.
    watches = ["BackupHelpers", "DockerAccess", "EngineAccess", "PrivilegedAccess", "Quota", "ServerDrift", "Usage"]
    assert health["controllers"] == sorted([*REGISTRY, *watches])
    assert {"Broadcast", "GroupMembership", "IdleCullPolicy", "ServerRestart"} <= set(health["controllers"])
    auth = {"Authorization": f"Bearer {hub.token}"}  # as Prometheus sends it
    metrics = requests.get(hub.reconciler_url + "metrics", headers=auth, timeout=10).text
    for line in (
        "# TYPE jhds_reconciler_queue_depth gauge",
        "# TYPE jhds_reconciles_total counter",
        "# TYPE jhds_reconcile_duration_seconds histogram",
    ):
        assert line in metrics


def test_kill_9_reconciler_is_restarted_and_nothing_is_lost(hub: Hub, users: list[str], tmp_path: Path) -> None:
    pid = hub.reconciler_details()["pid"]
    os.kill(pid, signal.SIGKILL)
    # Work submitted while the reconciler is dead waits in the store.
    (tmp_path / "late.yaml").write_text(gm("while-dead", "while-dead", ["ben", "dee"]))
    assert hub.hubctl("apply", "-f", str(tmp_path)).returncode == 0

    def restarted():
        try:
            h = hub.reconciler_details(timeout=2)
        except requests.RequestException:
            return None
        return h if h["pid"] != pid and h["status"] == "ok" else None

    wait_for(restarted, 45, "the hub restarts the reconciler", interval=0.5)  # the hub polls every 30 s
    wait_for(lambda: group_members(hub, "while-dead") == {"ben", "dee"}, 10, "queued work converged")
    assert "Service reconciler exited with status -9" in hub.log_path.read_text()


def test_hub_and_reconciler_write_sqlite_concurrently_without_lock_errors(hub: Hub, users: list[str]) -> None:
    """60 s of the hub applying changes while the reconciler writes status and events."""
    errors: list[str] = []
    applied = 0
    stop = time.monotonic() + 60

    def writer(n: int) -> None:
        nonlocal applied
        i = 0
        while time.monotonic() < stop:
            members = users[: 1 + (i % len(users))]
            r = hub.api("POST", "manifests", data=gm(f"churn-{n}", f"churn-{n}", members))
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:200]}")
            applied += 1
            i += 1
            time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert applied > 100
    for n in range(3):
        wait_for(lambda n=n: converged(hub, "groupmembership", f"churn-{n}"), 10, f"churn-{n} converged")
    log = hub.log_path.read_text().lower()
    assert "database is locked" not in log
    assert "operationalerror" not in log
