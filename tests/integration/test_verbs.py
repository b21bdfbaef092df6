"""hubctl's suspend, resume, reconcile, wait and get -w, and their REST endpoints, on the real hub."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from tests.harness import Hub
from tests.helpers import remove

NAME = "verbs-a"
REF = f"groupmembership/{NAME}"


def get_json(hub: Hub) -> dict:
    result = hub.hubctl("get", REF, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def applied(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("verbs")
    (folder / "verbs.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: jupyterhub-ds/v1
            kind: GroupMembership
            metadata:
              name: {NAME}
            spec:
              group: {NAME}
              members: []
            """
        )
    )
    result = hub.hubctl("apply", "-f", str(folder))
    assert result.returncode == 0, result.stderr
    yield NAME
    remove(hub, resources=[("GroupMembership", NAME)], groups=[NAME])  # the last test deleted the resource


def test_wait_for_ready_and_a_phase_that_never_comes(hub: Hub, applied: str) -> None:
    ready = hub.hubctl("wait", REF, "--for=condition=Ready", "--timeout=30s")
    assert ready.returncode == 0, ready.stderr
    assert ready.stdout.strip() == f"{REF} condition met"

    never = hub.hubctl("wait", "groupmembership", NAME, "--for=phase=Nope", "--timeout=2s")
    assert never.returncode == 1
    assert f"timed out after 2s waiting for phase=Nope on {REF}" in never.stderr

    bad = hub.hubctl("wait", REF, "--for=ready")
    assert bad.returncode == 2 and "condition=<Type>" in bad.stderr


def test_the_wait_endpoint(hub: Hub, applied: str) -> None:
    path = f"resources/groupmembership/{NAME}/wait"
    r = hub.api("GET", path, params={"for": "condition=Ready", "timeout": "10"})
    assert r.status_code == 200, r.text
    assert r.json()["met"] is True and r.json()["resource"]["metadata"]["name"] == NAME

    r = hub.api("GET", path, params={"for": "phase=Nope", "timeout": "0.5"})
    assert r.status_code == 200 and r.json()["met"] is False

    r = hub.api("GET", "resources/groupmembership/nothing-here/wait", params={"for": "delete", "timeout": "1"})
    assert r.json() == {"met": True, "resource": None}

    r = hub.api("GET", path, params={"for": "ready"})
    assert r.status_code == 400 and "condition=<Type>" in r.json()["message"]


def test_suspend_and_resume(hub: Hub, applied: str) -> None:
    suspended = hub.hubctl("suspend", REF)
    assert suspended.returncode == 0, suspended.stderr
    assert suspended.stdout.strip() == f"{REF} suspended"
    assert get_json(hub)["spec"]["suspend"] is True

    resumed = hub.hubctl("resume", "groupmembership", NAME)
    assert resumed.returncode == 0, resumed.stderr
    assert get_json(hub)["spec"]["suspend"] is False

    r = hub.api("POST", f"resources/groupmembership/{NAME}/suspend")
    assert r.status_code == 200 and r.json()["spec"]["suspend"] is True
    assert hub.api("POST", f"resources/groupmembership/{NAME}/resume").json()["spec"]["suspend"] is False
    assert hub.api("POST", "resources/groupmembership/nothing-here/suspend").status_code == 404
    # Every kind has spec.suspend (a request is recorded but not carried out).
    assert hub.api("POST", "resources/volumereset/anything/suspend").status_code == 404
    assert hub.api("POST", "resources/pods/anything/suspend").status_code == 404


def test_reconcile_now(hub: Hub, applied: str) -> None:
    r = hub.api("POST", f"resources/groupmembership/{NAME}/reconcile", params={"withSource": "false"})
    assert r.status_code == 202 and r.json()["requested"]
    assert hub.api("POST", "resources/groupmembership/nothing-here/reconcile").status_code == 404

    result = hub.hubctl("reconcile", REF, "--timeout", "20s")
    assert f"{REF} reconcile requested at" in result.stdout
    if result.returncode != 0 and "lastHandledReconcileAt" not in (get_json(hub).get("status") or {}):
        pytest.xfail("the reconciler does not write status.lastHandledReconcileAt yet (being added separately)")
    assert result.returncode == 0, result.stderr
    assert f"{REF} reconciled at" in result.stdout


def test_delete_ends_wait_and_watch(hub: Hub, applied: str) -> None:
    results: dict[str, object] = {}

    def run(key: str, *args: str) -> None:
        results[key] = hub.hubctl(*args, timeout=60)

    threads = [
        threading.Thread(target=run, args=("wait", "wait", REF, "--for=delete", "--timeout=30s")),
        threading.Thread(target=run, args=("watch", "get", "groupmembership", NAME, "-w")),
    ]
    for t in threads:
        t.start()
    time.sleep(2)  # both are polling
    deleted = hub.hubctl("delete", REF)
    assert deleted.returncode == 0, deleted.stderr
    for t in threads:
        t.join(45)
    wait, watch = results["wait"], results["watch"]
    assert wait.returncode == 0, wait.stderr
    assert wait.stdout.strip() == f"{REF} deleted"
    assert watch.returncode == 0, watch.stderr
    lines = watch.stdout.splitlines()
    assert lines[0].split("  ")[1] == REF  # time, reference, phase, conditions
    assert lines[-1].endswith(f"{REF}  deleted")
    again = hub.hubctl("wait", REF, "--for=delete", "--timeout=0")
    assert again.returncode == 0
