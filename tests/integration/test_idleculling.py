"""Idle-culling policies on real labs, with short times (idle 40 s, notice 20 s ahead).

One platform of its own (activity read from the proxy every 2 s), one shared timeline: the
servers of every scenario start together, then each test checks its own user, waiting as
long as its scenario needs. A lab's notices are read from the lab itself on its own port
with `no_track_activity`, so that the reading is not activity.

- `cull-idle` (group cull-gpu) is warned in JupyterLab, then stopped;
- `cull-busy` (cull-gpu) uses their server and keeps it;
- `cull-other` is governed by the everyone-policy (1 h) and untouched;
- `cull-keep` keeps their server (capped at maxExtension, 2 min) past the idle deadline;
- `cull-dry` is under a dry-run policy: reported, not stopped;
- `cull-pend` has a pending (suspended) restart: due, but skipped;
- `cull-change`'s policy is edited from 1 h to 30 s: the new deadline holds at once;
- `cull-web` (own policy: notice at 20 s, stop at 60 s) sees the deadline and the keep button
  on the home page, keeps the server, and sees the notice in JupyterLab.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.harness import Hub, lab_queue, server_token, wait_for
from tests.helpers import apply, apply_manifests, status
from tests.integration.browser import chromium, in_viewport, shot, sign_in, toast_with, wait

GROUPS = {
    "cull-idle": "cull-gpu",
    "cull-busy": "cull-gpu",
    "cull-web": "cull-web",
    "cull-keep": "cull-keep",
    "cull-dry": "cull-dry",
    "cull-pend": "cull-pend",
    "cull-change": "cull-change",
    "cull-other": None,
}
SHORT = {"idleTimeout": "40s", "warnBefore": "20s", "priority": 10}


def until(predicate, timeout: float, what: str):
    """`wait_for`, at a pace that does not flood the hub's log."""
    return wait_for(predicate, timeout, what, interval=0.5)


def policy(name: str, group: str | None, **spec: object) -> str:
    selector = f"  selector: {{groups: [{group}]}}\n" if group else ""
    fields = "".join(f"  {k}: {v if not isinstance(v, bool) else str(v).lower()}\n" for k, v in spec.items())
    return f"apiVersion: jupyterhub-ds/v1\nkind: IdleCullPolicy\nmetadata: {{name: {name}}}\nspec:\n{selector}{fields}"


def entry(hub: Hub, name: str, user: str) -> dict | None:
    return next((s for s in status(hub, "IdleCullPolicy", name).get("servers", []) if s["user"] == user), None)


def running(hub: Hub, user: str) -> bool:
    return "" in hub.api("GET", f"users/{user}").json()["servers"]


@pytest.fixture(scope="module")
def cull(own_platforms) -> Hub:
    env = {
        "JUPYTERHUB_LAST_ACTIVITY_INTERVAL": "2",
        "JUPYTERHUB_ACTIVITY_RESOLUTION": "1",
        "JUPYTERHUB_IDLE_CULLER_INTERVAL": "5",
        "JUPYTERHUB_IDLE_CULLER_ENABLED": "1",  # the seed: everyone, 1 h, lowest priority
        "JUPYTERHUB_IDLE_CULLER_TIMEOUT": "3600",
        "BROADCAST_DEADLINE": "6",
        "BROADCAST_ATTEMPT_TIMEOUT": "2",
    }
    return own_platforms.platform("cull", env)


@pytest.fixture(scope="module")
def timeline(cull: Hub, engine: docker.DockerClient) -> Iterator[dict]:
    """Policies, users and running servers, all started together; `cull-busy` kept active."""
    hub = cull
    for user, group in GROUPS.items():
        hub.create_user(user)
        if group:
            assert hub.api("POST", f"groups/{group}").status_code in (201, 409)
            assert hub.api("POST", f"groups/{group}/users", json={"users": [user]}).status_code == 200
    docs = [
        policy("everyone-long", None, idleTimeout="1h", warnBefore="1m"),
        policy("cull-gpu", "cull-gpu", **SHORT),
        policy("cull-web", "cull-web", idleTimeout="60s", warnBefore="40s", priority=10),
        policy("cull-keep", "cull-keep", **SHORT, maxExtension="2m"),
        policy("cull-dry", "cull-dry", idleTimeout="30s", warnBefore=0, priority=10, dryRun=True),
        policy("cull-pend", "cull-pend", idleTimeout="30s", warnBefore=0, priority=10),
        policy("cull-change", "cull-change", idleTimeout="1h", warnBefore=0, priority=10),
    ]
    apply_manifests(hub, *docs)
    stop = threading.Event()

    def keep_busy() -> None:  # requests through the proxy, as the lab's own page makes them
        token = {"Authorization": f"token {server_token(engine, hub, 'cull-busy')}"}
        while not stop.wait(3):
            requests.get(f"{hub.url}user/cull-busy/api/contents", headers=token, timeout=5)

    busy = threading.Thread(target=keep_busy, daemon=True)
    seen: list[dict] = []  # cull-idle's notices, read while its server runs (tests may come late)

    def watch_idle() -> None:
        while not stop.wait(1):
            with contextlib.suppress(docker.errors.NotFound, requests.RequestException, KeyError):
                seen.extend(lab_queue(hub, engine, "cull-idle", as_activity=False))

    watcher = threading.Thread(target=watch_idle, daemon=True)
    for user in GROUPS:
        hub.start_server(user)
        if user == "cull-busy":
            busy.start()
        if user == "cull-idle":
            watcher.start()
        if user == "cull-keep":  # right away: its idle deadline is 40 s from here
            kept = hub.api("POST", "users/cull-keep/keep-alive", json={"minutes": 60})
            kept_at = datetime.now(UTC)
    started = time.monotonic()
    # A pending restart of cull-pend's server: recorded, suspended, so it stays open.
    apply(hub, "ServerRestart", "pend", {"user": "cull-pend", "suspend": True})

    try:
        yield {"started": started, "kept": kept, "kept_at": kept_at, "idle_notices": seen}
    finally:
        stop.set()
        busy.join(10)
        watcher.join(10)


def test_home_page_shows_the_deadline_and_keep_button_and_the_lab_the_notice(
    cull: Hub, timeline: dict, tmp_path: Path
) -> None:
    """First, while cull-web's server is warned (at 20 s) and not yet stopped (at 60 s)."""
    admin, error = cull.login("admin")
    assert admin is not None, error
    cull.signup("cull-web")
    cull.approve(admin, "cull-web")
    # The notice waits in the lab's queue (not read here) for the lab's first look.
    until(lambda: (entry(cull, "cull-web", "cull-web") or {}).get("state") == "Warned", 40, "warned")
    with chromium(tmp_path / "profile") as browser:
        try:
            sign_in(browser, cull, "cull-web", "/hub/home")
            wait(browser).until(ec.visibility_of_element_located((By.ID, "idle-culling")))
            text = browser.find_element(By.ID, "idle-deadline").text
            assert "If it stays idle, your server stops at" in text and "warned in JupyterLab" in text, text
            keep = browser.find_element(By.ID, "keep-server")
            assert keep.is_displayed() and keep.text == "Keep my server"
            shot(browser, "idle-1-home-deadline")
            keep.click()
            status_box = (By.ID, "self-service-status")
            wait(browser).until(ec.text_to_be_present_in_element(status_box, "Your server is kept until"))
            wait(browser).until_not(ec.text_to_be_present_in_element((By.ID, "idle-deadline"), "warned"))
            shot(browser, "idle-2-home-kept")
            browser.get(f"{cull.url}user/cull-web/lab")
            wait(browser, 90).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-LabShell")))
            toast = wait(browser, 40).until(lambda d: toast_with(d, "This server stops at"))
            wait(browser, 10).until(lambda d: in_viewport(d, toast))  # it slides in from the edge
            assert "because it has been idle" in toast.text
            assert "Toastify__toast--warning" in toast.get_attribute("class")
            shot(browser, "idle-3-notice-in-lab")
        finally:
            shot(browser, "idle-9-last-state")
    assert running(cull, "cull-web")


def test_idle_member_is_warned_in_jupyterlab_then_stopped(cull: Hub, timeline: dict, engine) -> None:
    until(lambda: not running(cull, "cull-idle"), 90, "cull-idle's server stopped")
    stopped_at = datetime.now(UTC)
    (notice,) = timeline["idle_notices"]  # read back from the lab while it ran: exactly one
    assert notice["type"] == "warning" and notice["autoClose"] is False
    assert "because it has been idle" in notice["message"] and "Keep my server" in notice["message"]
    # Warned warnBefore (20 s) ahead of the stop, then stopped at the deadline.
    recent = [a for a in status(cull, "IdleCullPolicy", "cull-gpu")["recent"] if a["user"] == "cull-idle"]
    assert [a["action"] for a in recent] == ["Warned", "Stopped"], recent
    warned, stopped = (datetime.fromisoformat(a["time"]) for a in recent)
    assert timedelta(seconds=17) <= stopped - warned <= timedelta(seconds=35), recent
    assert stopped_at - stopped < timedelta(seconds=30)
    events = cull.api("GET", "resources/idlecullpolicy/cull-gpu/events").json()["items"]
    reasons = [(ev["reason"], ev["message"]) for ev in events if "cull-idle" in ev["message"]]
    assert [r for r, _ in reasons].count("Warned") == 1, reasons  # one notice for one deadline
    assert "Stopped" in [r for r, _ in reasons], reasons
    metrics = requests.get(cull.reconciler_url + "metrics", headers={"Authorization": f"token {cull.token}"}).text
    assert 'jhds_idle_cull_actions_total{action="stopped",policy="cull-gpu"}' in metrics
    assert 'jhds_idle_cull_actions_total{action="warned",policy="cull-gpu"}' in metrics


def test_active_member_keeps_their_server(cull: Hub, timeline: dict) -> None:
    until(lambda: time.monotonic() - timeline["started"] > 50, 60, "past the idle deadline")
    assert running(cull, "cull-busy")
    e = entry(cull, "cull-gpu", "cull-busy")
    assert e["state"] == "Active" and e["idleSeconds"] < 20, e
    # The same, as operators read it: hubctl describe, the REST listing, the page.
    described = cull.hubctl("describe", "idlecullpolicy/cull-gpu")
    assert described.returncode == 0, described.stderr
    servers = described.stdout.split("Servers:")[1].split("Status:")[0]
    assert "cull-busy" in servers and "Active" in servers and "cull-idle" not in servers, described.stdout
    listing = {p["name"]: p for p in cull.api("GET", "idle-culling").json()["policies"]}
    assert [s["user"] for s in listing["cull-gpu"]["servers"]] == ["cull-busy"]
    admin, error = cull.login("admin")
    assert admin is not None, error
    page = admin.get(f"{cull.url}hub/idle-culling", timeout=30)
    assert page.status_code == 200 and 'data-policy="cull-gpu"' in page.text and 'data-user="cull-busy"' in page.text


def test_non_member_under_a_longer_policy_is_untouched(cull: Hub, timeline: dict, engine) -> None:
    until(lambda: time.monotonic() - timeline["started"] > 50, 60, "past the short deadline")
    assert running(cull, "cull-other")
    e = until(lambda: entry(cull, "everyone-long", "cull-other"), 10, "cull-other under everyone-long")
    assert datetime.fromisoformat(e["deadline"]) - datetime.now(UTC) > timedelta(minutes=55)
    assert lab_queue(cull, engine, "cull-other", as_activity=False) == []
    # The seed (JUPYTERHUB_IDLE_CULLER_*) exists, but any written policy outranks it.
    seed = cull.api("GET", "resources/idlecullpolicy/idle-culler").json()
    assert seed["spec"]["priority"] == -1000 and seed["metadata"]["annotations"]["jupyterhub-ds/owner"] == "settings"
    assert status(cull, "IdleCullPolicy", "idle-culler").get("servers", []) == []


def test_keep_alive_moves_the_deadline_and_is_capped(cull: Hub, timeline: dict, engine) -> None:
    admin, error = cull.login("admin")
    assert admin is not None, error
    other = cull.approved_user(admin, "cull-stranger")
    forbidden = cull.as_user(other, "POST", "users/cull-keep/keep-alive", json={"minutes": 5})
    assert forbidden.status_code == 403, forbidden.text
    bad = cull.api("POST", "users/cull-keep/keep-alive", json={"minutes": "lots"})
    assert bad.status_code == 400 and "whole minutes" in bad.json()["message"]

    r = timeline["kept"]
    assert r.status_code == 200, r.text
    kept = r.json()
    assert kept["policy"] == "cull-keep" and kept["grantedMinutes"] == 2 and kept["capped"] is True
    kept_until = datetime.fromisoformat(kept["keptUntil"].replace("Z", "+00:00"))
    assert timedelta(seconds=119) <= kept_until - timeline["kept_at"] <= timedelta(seconds=121)
    (server,) = kept["servers"]
    assert server["deadline"] == kept["keptUntil"]
    until(lambda: (entry(cull, "cull-keep", "cull-keep") or {}).get("state") == "Kept", 10, "status says Kept")
    # Past the idle deadline (40 s from start), the server is still there.
    until(lambda: time.monotonic() - timeline["started"] > 55, 70, "past the idle deadline")
    assert running(cull, "cull-keep")


def test_dry_run_reports_and_stops_nothing(cull: Hub, timeline: dict, engine) -> None:
    e = until(
        lambda: (x := entry(cull, "cull-dry", "cull-dry")) and x["state"] == "WouldStop" and x, 60, "dry-run report"
    )
    assert e["message"] == "dry run: would be stopped"
    assert running(cull, "cull-dry")
    events = cull.api("GET", "resources/idlecullpolicy/cull-dry/events").json()["items"]
    assert [ev["reason"] for ev in events].count("WouldStop") == 1
    assert lab_queue(cull, engine, "cull-dry", as_activity=False) == []  # a dry run warns nobody


def test_server_with_a_pending_restart_is_skipped(cull: Hub, timeline: dict) -> None:
    e = until(lambda: (x := entry(cull, "cull-pend", "cull-pend")) and x["state"] == "Skipped" and x, 60, "skipped")
    assert "ServerRestart/pend is pending" in e["message"]
    assert running(cull, "cull-pend")
    # Once the request is gone, the policy stops the server.
    assert cull.api("DELETE", "resources/serverrestart/pend").status_code == 204
    until(lambda: not running(cull, "cull-pend"), 30, "cull-pend stopped after the restart request went")


def test_policy_change_takes_effect_at_once(cull: Hub, timeline: dict) -> None:
    before = until(lambda: entry(cull, "cull-change", "cull-change"), 30, "cull-change governed")
    assert datetime.fromisoformat(before["deadline"]) - datetime.now(UTC) > timedelta(minutes=50)
    apply_manifests(cull, policy("cull-change", "cull-change", idleTimeout="20s", warnBefore=0, priority=10))
    t0 = time.monotonic()

    def new_deadline() -> bool:  # in the status, or already acted on (stopped: gone from it)
        e = entry(cull, "cull-change", "cull-change")
        if e is None:
            return not running(cull, "cull-change")
        return datetime.fromisoformat(e["deadline"]) < datetime.now(UTC) + timedelta(seconds=30)

    until(new_deadline, 10, "the new deadline in the status")
    assert time.monotonic() - t0 < 5
    until(lambda: not running(cull, "cull-change"), 40, "cull-change stopped under the edited policy")
