"""Inputs a requester or a lab controls (issue 11, items 7 to 10), tried on the real hub,
reconciler and labs: each attack is refused, bounded, and leaves nothing half-applied.

7. Bodies: over 1 MiB is a 413, over 500 documents per apply is a 413; a 1 MB body of small
   documents is parsed off the hub's event loop, so a cheap request meanwhile answers at once.
8. Lab replies: a lab that answers the ingest with a million characters of control and bidi
   characters gets a short, printable error row, and the hub's log never holds the reply.
9. Messages: code points are counted (140 emoji pass and are delivered, 141 do not); NUL,
   bidi overrides and line breaks are refused, naming the problem.
10. The seed API: `"recipients": []` selects nobody and is a 400; only a missing field means
   everyone.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator

import docker
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec

from tests.harness import Hub
from tests.harness import lab_queue as queued
from tests.helpers import broadcasts
from tests.integration.browser import chromium, shot, sign_in, wait

NORMAL = "ulla"  # an ordinary running lab
HOSTILE = "mallory"  # her lab answers the ingest with garbage
MAX_BODY_BYTES = 1_048_576
MAX_DOCUMENTS = 500
EMOJI = "\U0001f680"


@pytest.fixture(scope="module")
def normal(hub: Hub, engine: docker.DockerClient) -> Iterator[str]:
    hub.create_user(NORMAL)
    hub.start_server(NORMAL)
    queued(hub, engine, NORMAL)  # start from an empty queue
    yield NORMAL
    hub.stop_server(NORMAL)


# --- 7. bodies ------------------------------------------------------------------------------


def test_a_body_over_a_mebibyte_is_413(hub: Hub, admin_session: requests.Session) -> None:
    big = broadcasts(1, "big-", "'" + "x" * 100 + "'").encode()
    big += b"#" * (MAX_BODY_BYTES + 1 - len(big))
    r = hub.as_user(admin_session, "POST", "manifests", data=big)
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["status"] == 413 and body["message"] == body["error"]
    assert body["message"] == "request body too large: 1048577 bytes; the limit is 1048576 bytes (1 MiB)"
    assert hub.as_user(admin_session, "GET", "resources/broadcast/big-0").status_code == 404
    # Any JSON body the platform reads is capped the same way (here the panel's API).
    r = hub.as_user(admin_session, "POST", "notifications", data=b'{"message": "' + b"x" * MAX_BODY_BYTES + b'"}')
    assert r.status_code == 413 and "the limit is 1048576 bytes" in r.json()["message"], r.text
    # At the limit, the body is read (and here refused for what it says, not for its size).
    at_limit = b"#" * MAX_BODY_BYTES
    assert hub.as_user(admin_session, "POST", "manifests", data=at_limit).status_code != 413


def test_more_than_500_documents_is_413_and_nothing_is_applied(hub: Hub, admin_session: requests.Session) -> None:
    r = hub.as_user(admin_session, "POST", "manifests", data=broadcasts(MAX_DOCUMENTS + 1, "many-").encode())
    assert r.status_code == 413, r.text
    assert r.json()["message"] == "501 documents were sent; the limit is 500 per request: split the apply"
    assert hub.as_user(admin_session, "GET", "resources/broadcast/many-0").status_code == 404


def concurrent_latencies(hub: Hub, admin: requests.Session, body: bytes) -> tuple[requests.Response, float, list]:
    """POST `body` to /hub/api/manifests and, while the hub handles it, time cheap requests
    one after another. (the big answer, its seconds, the cheap requests' seconds)"""
    answer: dict = {}

    def big() -> None:
        t0 = time.perf_counter()
        answer["r"] = hub.as_user(admin, "POST", "manifests", data=body)
        answer["s"] = time.perf_counter() - t0

    thread = threading.Thread(target=big)
    thread.start()
    time.sleep(0.1)  # the body is on its way (1 MB over loopback takes milliseconds)
    latencies = []
    while thread.is_alive():
        t0 = time.perf_counter()
        r = requests.get(f"{hub.url}hub/api/", timeout=30)
        latencies.append(time.perf_counter() - t0)
        assert r.status_code == 200
    thread.join()
    return answer["r"], answer["s"], latencies


def test_a_megabyte_of_small_documents_does_not_stall_the_hub(hub: Hub, admin_session: requests.Session) -> None:
    small = broadcasts(10_500, "stall-").encode()  # ~1 MB of ~95-byte documents
    assert 900_000 < len(small) <= MAX_BODY_BYTES
    r, seconds, latencies = concurrent_latencies(hub, admin_session, small)
    assert r.status_code == 413 and r.json()["message"].startswith("10500 documents were sent"), r.text
    slowest = max(latencies, default=0)
    print(f"\n10,500 docs, {len(small):,} B: 413 in {seconds:.2f} s; slowest of {len(latencies)} GETs {slowest:.3f} s")
    assert latencies and max(latencies) < 1.0, latencies
    # 500 documents (the limit) of ~2 KB each, all invalid: read, validated, refused whole.
    fat = broadcasts(MAX_DOCUMENTS, "fat-", "'" + "x" * 1950 + "'").encode()
    assert len(fat) <= MAX_BODY_BYTES
    r, seconds, latencies = concurrent_latencies(hub, admin_session, fat)
    assert r.status_code == 422 and len(r.json()["errors"]) == MAX_DOCUMENTS, r.text[:500]
    print(f"500 documents, {len(fat):,} bytes: 422 in {seconds:.2f} s; slowest GET {max(latencies, default=0):.3f} s")
    assert max(latencies, default=0) < 1.0, latencies


# --- 8. lab replies -------------------------------------------------------------------------

# Mallory's lab (her own persistent home, her own server's config) answers every ingest
# with status 500 and a million characters of terminal escapes, NULs, bells and bidi marks.
HOSTILE_CONFIG = """
import jupyterlab_notifications_extension.routes as routes

UNIT = "\\u202e\\x1b[31mEVIL\\x00\\x07\\u2066\\r\\n\\x9b\\x7f\\u202a"
BODY = (UNIT * (1_000_000 // len(UNIT) + 1))[:1_000_000]


async def post(self, *args, **kwargs):
    self.set_status(500)
    self.finish(BODY)


routes.NotificationIngestHandler.post = post
"""


@pytest.fixture
def hostile(hub: Hub, engine: docker.DockerClient) -> Iterator[str]:
    hub.create_user(HOSTILE)
    hub.start_server(HOSTILE)
    config = base64.b64encode(HOSTILE_CONFIG.encode()).decode()
    hub.exec(
        engine,
        HOSTILE,
        f"mkdir -p /home/lab/.jupyter && echo {config} | base64 -d > /home/lab/.jupyter/jupyter_server_config.py",
    )
    hub.stop_server(HOSTILE)
    hub.start_server(HOSTILE)  # the same home: the hostile config is loaded
    try:
        yield HOSTILE
    finally:
        hub.exec(engine, HOSTILE, "rm -f /home/lab/.jupyter/jupyter_server_config.py")
        hub.stop_server(HOSTILE)


def test_a_hostile_lab_reply_is_bounded_and_printable(hub: Hub, engine, hostile: str, admin_session) -> None:
    # The lab really answers that way (with its own token, as the reconciler would call it).
    token = next(
        e.split("=", 1)[1]
        for e in engine.containers.get(hub.container_name(hostile)).attrs["Config"]["Env"]
        if e.startswith("JUPYTERHUB_API_TOKEN=")
    )
    url = f"{hub.url}user/{hostile}/jupyterlab-notifications-extension/ingest"
    r = requests.post(url, json={"message": "x"}, headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 500 and len(r.text) == 1_000_000 and "\u202e" in r.text and "\x00" in r.text
    log_before = hub.log_path.stat().st_size

    data = hub.broadcast({"message": "to a hostile lab", "targets": {"users": [hostile]}}, 40, session=admin_session)
    [row] = data["deliveries"]
    assert row["user"] == hostile and row["outcome"] == "failed" and row["httpStatus"] == 500, row
    error = row["error"]
    assert error.startswith("server error 500: ") and "EVIL" in error, error
    assert len(error) <= 200 and error.isprintable(), repr(error)
    assert not any(c in error for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), repr(error)

    # The hub's log (hub, proxy and reconciler) grew by a few lines, not by the reply.
    with hub.log_path.open("rb") as f:
        f.seek(log_before)
        added = f.read().decode("utf-8", "replace")
    assert len(added) < 100_000, len(added)
    assert added.count("EVIL") < 500 and "\u202e" not in added and "\x1b[31mEVIL" not in added


# --- 9. messages ----------------------------------------------------------------------------


def test_140_emoji_are_accepted_and_delivered_141_are_not(hub: Hub, engine, normal: str, admin_session) -> None:
    message = EMOJI * 140
    data = hub.broadcast({"message": message, "targets": {"users": [normal]}}, 40, session=admin_session)
    assert [(r["user"], r["outcome"]) for r in data["deliveries"]] == [(normal, "delivered")]
    assert [n["message"] for n in queued(hub, engine, normal)] == [message]
    for path in ("notifications", "notifications/broadcast"):
        r = hub.as_user(admin_session, "POST", path, json={"message": EMOJI * 141})
        assert r.status_code == 400, r.text
        assert "message: must be at most 140 characters (got 141)" in r.json()["message"]


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("before\x00after", "message: must not contain control characters (U+0000 at character 7)"),
        (
            "invoice \u202efdp.exe",
            "message: must not contain bidirectional override or isolate characters (U+202E at character 9)",
        ),
        ("line one\nline two", "message: must be one line: line breaks are not allowed (U+000A at character 9)"),
    ],
)
def test_invisible_and_multiline_messages_are_refused(hub: Hub, admin_session, message: str, problem: str) -> None:
    before = len(hub.as_user(admin_session, "GET", "resources/broadcast").json()["items"])
    for path in ("notifications", "notifications/broadcast"):
        r = hub.as_user(admin_session, "POST", path, json={"message": message})
        assert r.status_code == 400, r.text
        assert r.json()["message"] == problem and r.json()["error"] == problem
    # A manifest says the same, with its line.
    doc = {"apiVersion": "jupyterhub-ds/v1", "kind": "Broadcast", "metadata": {"name": "bad"}, "spec": {}}
    doc["spec"]["message"] = message
    r = hub.as_user(admin_session, "POST", "manifests", json=doc)
    assert r.status_code == 422 and r.json()["errors"][0]["message"] in problem, r.text
    assert len(hub.as_user(admin_session, "GET", "resources/broadcast").json()["items"]) == before


# --- 10. the seed API's recipients ----------------------------------------------------------


def test_empty_recipients_select_nobody_and_are_refused(hub: Hub, engine, normal: str, admin_session) -> None:
    before = len(hub.as_user(admin_session, "GET", "resources/broadcast").json()["items"])
    r = hub.as_user(admin_session, "POST", "notifications/broadcast", json={"message": "to nobody", "recipients": []})
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "recipients: an empty list selects nobody; omit recipients to reach everyone"
    r = hub.as_user(admin_session, "POST", "notifications/broadcast", json={"message": "x", "recipients": None})
    assert r.status_code == 400 and r.json()["message"] == "recipients must be a list of usernames", r.text
    assert len(hub.as_user(admin_session, "GET", "resources/broadcast").json()["items"]) == before
    assert queued(hub, engine, normal) == []
    # Without the field: everyone with a running server.
    r = hub.as_user(admin_session, "POST", "notifications/broadcast", json={"message": "to everyone"})
    assert r.status_code == 200, r.text
    assert [d["status"] for d in r.json()["details"] if d["username"] == normal] == ["success"], r.text
    assert [n["message"] for n in queued(hub, engine, normal)] == ["to everyone"]


# --- 9. the panel counts as the server does (headless Chromium) -----------------------------


def test_the_panel_counts_code_points_and_refuses_line_breaks(hub: Hub, admin_session, tmp_path) -> None:
    with chromium(tmp_path / "profile") as browser:
        try:
            sign_in(browser, hub, "admin", "/hub/notifications")
            message = wait(browser).until(ec.element_to_be_clickable((By.ID, "message")))

            def text(element_id: str) -> str:
                return browser.find_element(By.ID, element_id).text

            message.click()
            # ChromeDriver types only the Basic Multilingual Plane: insert as an input method does.
            browser.execute_cdp_cmd("Input.insertText", {"text": EMOJI * 140})
            assert browser.execute_script("return document.getElementById('message').value.length") == 280
            wait(browser).until(lambda _: text("counter") == "140/140")
            assert "text-danger" not in browser.find_element(By.ID, "counter").get_attribute("class")
            assert text("message-problem") == "" and browser.find_element(By.ID, "send").is_enabled()
            browser.execute_cdp_cmd("Input.insertText", {"text": EMOJI})
            wait(browser).until(lambda _: text("counter") == "141/140")
            assert text("message-problem") == "At most 140 characters (got 141)."
            shot(browser, "abuse-inputs-141-emoji")

            message.clear()
            message.send_keys("line one", Keys.ENTER, "two")  # Enter adds no line break
            assert message.get_attribute("value") == "line onetwo"
            browser.execute_cdp_cmd("Input.insertText", {"text": "\nthree"})  # as pasted
            wait(browser).until(lambda _: text("message-problem").startswith("Must be one line"))
            assert text("message-problem") == "Must be one line: line breaks are not allowed (U+000A at character 12)."
            browser.find_element(By.ID, "send").click()
            assert text("form-error") == text("message-problem")
            assert "d-none" in browser.find_element(By.ID, "progress-section").get_attribute("class")  # not sent
            shot(browser, "abuse-inputs-line-break")
        except BaseException:
            shot(browser, "abuse-inputs-failure")
            raise
