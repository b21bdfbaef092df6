"""Quotas and storage soft limits (issue 26) on real labs, on a platform of their own with a
watch that looks every second and a short storage survey.

`q-tiny` is in `q-tiny`, whose GroupPolicy gives `quota: {serverHours: 0.01, window: 1h}`
(36 server-seconds); `q-disk` is in `q-disk`, whose policy gives `storage: {home:
{softLimit: 4M}}`.

1. q-tiny's lab runs: at 80 % (about 29 s) the Quota watch tells her in JupyterLab, once,
   naming the quota; `GET /hub/api/users/q-tiny/quota` (the home page's source) shows the
   threshold crossed; past 100 % her server carries on (`enforce: spawn`), stopped, the next
   start is refused (429) with the quota's message: which quota, the figures, when it frees
   up; an operator's grant (`hubctl quota grant`) lets her start again, an event on
   `Quota/q-tiny`;
2. q-disk writes 6 MiB into her home: after the next storage survey the watch tells her in
   the lab with the sizes, and the quota endpoint shows the volume over its soft limit;
3. the home page in Chromium, for `q-home` (signed up, in `q-home`, whose policy gives the
   same soft limit and a quota) past the limit: the cleanup tools first ("Back up and reset
   volumes", opening the self-service dialog), her volume's size against the limit, and her
   use against the quota (screenshots in test-artifacts/browser/).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.harness import Hub, lab_queue, wait_for
from tests.helpers import apply_manifests, events, gm, manifest, remove
from tests.integration.browser import shot, sign_in, wait

USERS = ("q-tiny", "q-disk")
HOME_POLICY = {"groups": ["q-home"], "storage": {"home": {"softLimit": "4M"}}, "quota": {"serverHours": 100}}
SETTINGS = {"QUOTA_CHECK_SECONDS": "1", "RESYNC_SECONDS": "2", "STORAGE_SURVEY_SECONDS": "3"}


@pytest.fixture(scope="module")
def hub(own_platforms) -> Hub:
    hub = own_platforms.platform("quota", SETTINGS, users=USERS)
    apply_manifests(
        hub,
        manifest("GroupPolicy", "q-tiny", {"groups": ["q-tiny"], "quota": {"serverHours": 0.01, "window": "1h"}}),
        manifest("GroupPolicy", "q-disk", {"groups": ["q-disk"], "storage": {"home": {"softLimit": "4M"}}}),
        manifest("GroupPolicy", "q-home", HOME_POLICY),
        gm("q-tiny", "q-tiny", ["q-tiny"]),
        gm("q-disk", "q-disk", ["q-disk"]),
    )
    for user in USERS:
        wait_for(lambda u=user: u in hub.api("GET", f"groups/{u}").json().get("users", []), 30, f"{user} in its group")
    return hub


@pytest.fixture(scope="module", autouse=True)
def left_as_found(hub: Hub) -> Iterator[None]:
    """What the tests add beside the policies above, taken off before the module's leak check
    (which runs before `hub`'s own teardown): the servers they leave running, q-home's group."""
    yield
    for user in (*USERS, "q-home"):
        if hub.api("GET", f"users/{user}").json().get("servers"):  # (q-home: none if its test did not run)
            hub.stop_server(user)
    remove(hub, groups=["q-home"])


def notices(hub: Hub, engine: docker.DockerClient, user: str, seen: list[str], word: str) -> list[str]:
    """The lab's notices so far (reading empties the lab's queue: kept in `seen`) with `word`."""
    seen += [n["message"] for n in lab_queue(hub, engine, user, as_activity=False)]
    return [m for m in seen if word in m]


def quota_of(hub: Hub, user: str) -> dict:
    r = hub.api("GET", f"users/{user}/quota")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_tiny_quota_warns_in_the_lab_then_refuses_the_start(hub: Hub, engine: docker.DockerClient) -> None:
    shown = hub.hubctl("get", "effective", "q-tiny", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    quota = json.loads(shown.stdout)["quota"]
    assert quota["limits"]["serverHours"] == {"hours": 0.01, "windowSeconds": 3600, "policy": "q-tiny"}, quota
    hub.start_server("q-tiny")
    seen: list[str] = []
    told = wait_for(lambda: notices(hub, engine, "q-tiny", seen, "server-hours quota"), 90, "the 80 % notice")
    assert "of your server-hours quota" in told[0] and "policy q-tiny" in told[0], told
    assert "At 100 % new servers are refused" in told[0]
    limits = quota_of(hub, "q-tiny")["limits"]
    assert limits[0]["field"] == "serverHours" and 80 in limits[0]["crossed"], limits

    # Past 100 %: the server carries on (enforce: spawn), a new start is refused.
    # Well past it: a session the reconciler closes (its resync saw the server gone before the
    # hub's post-stop record) ends at the last time it was seen, up to RESYNC_SECONDS early.
    wait_for(lambda: quota_of(hub, "q-tiny")["limits"][0]["percent"] >= 120, 60, "the quota used up")
    assert hub.api("GET", "users/q-tiny").json()["servers"][""]["ready"]
    hub.stop_server("q-tiny")
    after = quota_of(hub, "q-tiny")
    assert after["refused"], after  # the stop ends the clock, the use stays in the window
    r = hub.api("POST", "users/q-tiny/server")
    assert r.status_code == 429, (r.status_code, r.text)
    message = r.json()["message"]
    assert "You cannot start a server: your server-hours quota of policy q-tiny is used up" in message, message
    assert "of 0.01 h in the last 1 hours" in message and "it frees up at" in message, message
    assert not hub.api("GET", "users/q-tiny").json()["servers"]
    wait_for(lambda: "refused by quota" in hub.log_path.read_text(errors="replace"), 10, "the refusal in the hub's log")

    # An operator's grant: she may start again; the grant is an event on Quota/q-tiny.
    granted = hub.hubctl("quota", "grant", "q-tiny", "--hours", "1", "-o", "json")
    assert granted.returncode == 0, granted.stderr
    assert json.loads(granted.stdout)["refused"] is False
    granted_events = [e for e in events(hub, reason="Granted") if (e["kind"], e["name"]) == ("Quota", "q-tiny")]
    assert granted_events and "1 server-hours granted to q-tiny" in granted_events[0]["message"], granted_events
    shown = hub.hubctl("quota", "get", "q-tiny")
    assert shown.returncode == 0 and "serverHours" in shown.stdout and "allowed" in shown.stdout, shown.stdout
    hub.start_server("q-tiny")
    hub.stop_server("q-tiny")


def test_a_small_storage_soft_limit_warns_in_the_lab(hub: Hub, engine: docker.DockerClient) -> None:
    hub.start_server("q-disk")
    assert not quota_of(hub, "q-disk").get("storage") or not quota_of(hub, "q-disk")["storage"][0]["over"]
    hub.exec(engine, "q-disk", "head -c 6291456 /dev/urandom > $HOME/big.bin && sync")
    seen: list[str] = []
    told = wait_for(lambda: notices(hub, engine, "q-disk", seen, "home volume"), 90, "the storage notice")
    assert "of its soft limit of 4.0 MiB" in told[0] and "MiB" in told[0], told
    storage = quota_of(hub, "q-disk")["storage"]
    assert storage[0]["key"] == "home" and storage[0]["over"] and storage[0]["bytes"] >= 6 * 1024**2, storage
    listed = hub.hubctl("get", "quotas", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert "q-disk" in {u["user"] for u in json.loads(listed.stdout)["users"]}


def test_the_home_page_puts_the_cleanup_tools_first(
    hub: Hub, engine: docker.DockerClient, driver: webdriver.Chrome
) -> None:
    admin, error = hub.login("admin")
    assert admin is not None, error
    hub.approved_user(admin, "q-home").close()
    admin.close()
    assert hub.api("POST", "groups/q-home").status_code in (201, 409)
    assert hub.api("POST", "groups/q-home/users", json={"users": ["q-home"]}).status_code == 200
    hub.start_server("q-home")
    hub.exec(engine, "q-home", "head -c 6291456 /dev/urandom > $HOME/big.bin && sync")
    wait_for(lambda: any(v["over"] for v in quota_of(hub, "q-home").get("storage") or []), 60, "the survey's size")
    hub.stop_server("q-home")  # the volume reset and backup are for a stopped server
    try:
        sign_in(driver, hub, "q-home")
        over = wait(driver).until(ec.visibility_of_element_located((By.ID, "storage-over")))
        assert "Over the soft limit: home holds" in over.text and "of 4.0 MiB" in over.text, over.text
        box = driver.find_element(By.ID, "self-service")
        # The cleanup tools come first: above the usage box and the page's other buttons.
        assert box.text.index("Over the soft limit") < box.text.index("My usage") < box.text.index("Manage Volumes")
        usage = driver.find_element(By.ID, "usage-quota").text
        assert "server-hours:" in usage and "of 100 h" in usage and "home volume:" in usage, usage
        shot(driver, "quota-1-home-over-the-soft-limit")
        driver.execute_script(
            "document.getElementById('volumes-dialog')"
            ".addEventListener('shown.bs.modal', () => { window.volumesShown = true; }, { once: true });"
        )
        driver.find_element(By.ID, "cleanup-volumes").click()
        wait(driver).until(lambda d: d.execute_script("return window.volumesShown === true;"))
        wait(driver).until(ec.visibility_of_element_located((By.ID, "volume-home")))
        shot(driver, "quota-2-cleanup-dialog")
    except Exception:
        shot(driver, "quota-failed")
        raise
