"""Broadcasts in a real headless Chromium: the admin panel, then the toast in a user's lab.

The admin signs in, types a message (the counter and the preview follow), sends it, and
watches the progress bar and the per-server table reach every running server; the history
lists it. Then a user's JupyterLab, open in a second browser, shows a broadcast as a toast
(pushed at once over the lab's notification WebSocket), which the Dismiss button closes.

Same Chromium, driver and screenshot conventions as `test_browser.py`; screenshots go to
`test-artifacts/browser/broadcast-*.png`, also when the test fails.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from tests.harness import Hub
from tests.integration.browser import chromium, in_viewport, shot, sign_in, toast_with, wait

USERS = ("wes", "xia", "yan")
LAB_USER = "wes"
STREAM = "jupyterlab-notifications-extension/stream"


@pytest.fixture(scope="module")
def users(hub: Hub, admin_session: requests.Session) -> Iterator[tuple[str, ...]]:
    """Three fresh approved users with running servers; the servers are stopped at the end."""
    try:
        for user in USERS:
            hub.approved_user(admin_session, user).close()
            hub.start_server(user)
        yield USERS
    finally:
        for user in USERS:
            if "" in hub.api("GET", f"users/{user}").json().get("servers", {}):
                hub.stop_server(user)


def running_servers(hub: Hub) -> int:
    r = hub.api("GET", "users?state=ready")
    assert r.status_code == 200, r.text
    return sum(1 for u in r.json() for s in (u.get("servers") or {}).values() if s.get("ready"))


def stream_connected(browser: webdriver.Chrome, seen: dict[str, dict]) -> bool:
    """Whether the lab's notification WebSocket has been opened (101), from the performance log.

    `seen` carries the WebSocket request ids across calls (reading the log empties it)."""
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.webSocketCreated" and STREAM in params.get("url", ""):
            seen[params["requestId"]] = {}
        elif message.get("method") == "Network.webSocketHandshakeResponseReceived" and params["requestId"] in seen:
            seen[params["requestId"]] = {"status": params["response"]["status"]}
    return any(v.get("status") == 101 for v in seen.values())


def scroll_to(browser: webdriver.Chrome, element_id: str) -> None:
    """At once: Bootstrap's smooth scrolling would still be moving when the screenshot is taken."""
    browser.execute_script(
        "document.getElementById(arguments[0]).scrollIntoView({block: 'start', behavior: 'instant'});", element_id
    )


def test_admin_broadcasts_from_the_panel_and_a_lab_shows_the_toast(
    hub: Hub, users: tuple[str, ...], admin_session: requests.Session, tmp_path: Path
) -> None:
    message = f"Save your work now {secrets.token_hex(2)}"
    assert len(message) == 23

    # --- the panel ---
    with chromium(tmp_path / "admin-profile") as admin:
        try:
            sign_in(admin, hub, "admin", "/hub/notifications")
            wait(admin).until(ec.presence_of_element_located((By.ID, "notifications-panel")))
            link = admin.find_element(By.ID, "nav-notifications")
            assert link.is_displayed() and link.text == "Notifications"
            assert admin.find_element(By.ID, "counter").text == "0/140"

            admin.find_element(By.ID, "message").send_keys(message)
            wait(admin).until(ec.text_to_be_present_in_element((By.ID, "counter"), "23/140"))
            assert admin.find_element(By.ID, "counter").text == "23/140"
            assert admin.find_element(By.ID, "preview-text").text == message
            # By keyboard, as a person picks it: chromedriver's option click fires only
            # "change", and the panel updates the preview on "input".
            kind = admin.find_element(By.ID, "type")
            kind.send_keys("success")
            assert Select(kind).first_selected_option.get_attribute("value") == "success"
            wait(admin).until(ec.text_to_be_present_in_element_attribute((By.ID, "preview"), "class", "alert-success"))
            shot(admin, "broadcast-1-panel-typed")

            n = running_servers(hub)
            assert n >= len(users)
            admin.find_element(By.ID, "send").click()
            t0 = time.monotonic()
            wait(admin, 60).until(ec.text_to_be_present_in_element((By.ID, "progress-bar"), f"{n}/{n}"))
            assert admin.find_element(By.ID, "progress-bar").text == f"{n}/{n}"
            wait(admin, 10).until(ec.text_to_be_present_in_element((By.ID, "progress-phase"), "Completed"))
            progress_seconds = time.monotonic() - t0
            rows = admin.find_elements(By.CSS_SELECTOR, "#deliveries tbody tr")
            outcomes = {r.get_attribute("data-user"): r.find_elements(By.TAG_NAME, "td")[2].text for r in rows}
            assert len(rows) == n, outcomes
            assert set(users) <= set(outcomes), outcomes
            assert set(outcomes.values()) == {"delivered"}, outcomes
            assert admin.find_element(By.ID, "send").is_enabled()
            scroll_to(admin, "progress-section")
            # Bootstrap animates the bar's width (0.6 s): wait until it is drawn full.
            wait(admin).until(
                lambda d: d.execute_script(
                    "const b = document.getElementById('progress-bar');"
                    "return b.style.width === '100%' && b.offsetWidth === b.parentElement.clientWidth;"
                )
            )
            shot(admin, "broadcast-2-progress-complete")

            # The history is reloaded once the run is over.
            history = (By.CSS_SELECTOR, "#history tbody")
            wait(admin).until(ec.text_to_be_present_in_element(history, message))
            (row,) = [r for r in admin.find_elements(By.CSS_SELECTOR, "#history tbody tr") if message in r.text]
            cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
            assert cells[1:] == [message, "success", "Completed", f"{n}/{n}", "0", "0"], cells
            scroll_to(admin, "history")
            shot(admin, "broadcast-3-history")
        finally:
            shot(admin, "broadcast-8-panel-last-state")
    print(f"\npanel: {n}/{n} delivered and shown {progress_seconds:.1f} s after Send")

    # --- the toast in a user's JupyterLab ---
    notice = f"Toast for {LAB_USER} {secrets.token_hex(3)}"
    with chromium(tmp_path / "lab-profile", performance_log=True) as lab:
        try:
            t0 = time.monotonic()
            sign_in(lab, hub, LAB_USER, f"/user/{LAB_USER}/lab")
            wait(lab, 90).until(ec.presence_of_element_located((By.ID, "jp-main-dock-panel")))
            wait(lab, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-LabShell")))
            lab_seconds = time.monotonic() - t0
            # The extension polls once when activated, then opens its push socket: a broadcast
            # arriving between the two would only show at the next poll (30 s later).
            sockets: dict[str, dict] = {}
            wait(lab, 30).until(lambda d: stream_connected(d, sockets))
            socket_seconds = time.monotonic() - t0 - lab_seconds

            r = hub.as_user(
                admin_session,
                "POST",
                "notifications",
                json={"message": notice, "type": "warning", "autoClose": False, "targets": {"users": [LAB_USER]}},
            )
            assert r.status_code == 202, r.text
            t0 = time.monotonic()
            toast = wait(lab, 10).until(lambda d: toast_with(d, notice))
            toast_seconds = time.monotonic() - t0
            # The toast slides in from the right edge; its button is on screen once it is in.
            dismiss = toast.find_element(By.XPATH, ".//button[normalize-space()='Dismiss']")
            wait(lab, 10).until(lambda d: dismiss.is_displayed() and in_viewport(d, toast))
            shot(lab, "broadcast-4-toast-in-lab")
            assert toast.find_element(By.CSS_SELECTOR, ".jp-toast-message").text == notice
            assert "Toastify__toast--warning" in toast.get_attribute("class")
            dismiss.click()
            wait(lab, 10).until(lambda d: toast_with(d, notice) is None)
            shot(lab, "broadcast-5-toast-dismissed")
        finally:
            shot(lab, "broadcast-9-lab-last-state")
    print(
        f"lab: loaded in {lab_seconds:.1f} s, push socket open {socket_seconds:.1f} s later;",
        f"toast shown {toast_seconds:.1f} s after the broadcast was submitted",
    )
