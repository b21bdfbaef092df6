"""Issue 22, items 6 to 8, on a real hub, reconciler, engine and lab:

- lanes: with the slow lane (one worker) busy with real backups of 400 MB of random data, a
  group change and a broadcast are done at once; a backup past the slow lane's deadline is
  cancelled and recorded; a worker that does not give way (test hook) is reported by
  /health/details and turns /health to 503 until it ends;
- the details' token check keeps nothing of 20,000 random 8 KB tokens (the reconciler's RSS
  grows less than 10 MB) and asks the hub once for a token it refused;
- a keep-alive storm keeps only the user's newest events (others' and the platform's stay),
  never keeps a server past last activity + idleTimeout + maxExtension, and activity
  reported in the future counts as now.

One platform of its own: small lanes and deadlines, the test hook, 20 events per user.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import docker
import pytest
import requests

from tests.harness import Hub, wait_for
from tests.helpers import apply, events, status
from vocabulary import naming

IMAGE = "jupyterhub-ds/base:bookworm"
SLOW_DEADLINE, FAST_DEADLINE, PER_SUBJECT = 6, 8, 20
ENV = {
    "RECONCILER_WORKERS": "2",
    "RECONCILER_SLOW_WORKERS": "1",
    "RECONCILE_DEADLINE": str(FAST_DEADLINE),
    "RECONCILE_SLOW_DEADLINE": str(SLOW_DEADLINE),
    "RECONCILER_TEST_HOOKS": "true",
    "EVENTS_MAX_PER_SUBJECT": str(PER_SUBJECT),
}
KEEPER = "lane-k"  # keeps their server; a running lab
SESSIONS: dict[str, requests.Session] = {}  # logged-in users


@pytest.fixture(scope="module")
def lhub(own_platforms) -> Iterator[Hub]:
    engine = docker.from_env()
    hub = own_platforms.platform("lanes", ENV)
    hub.create_user("lane-a")
    volume = hub.volume_name("lane-a", "home")
    engine.volumes.create(volume, labels=naming.object_labels(hub.platform, "lane-a") | {naming.LABEL_VOLUME: "home"})
    # Incompressible data: gzip takes well past the slow deadline (a sparse file no longer
    # would: backups archive sparse files by their data only).
    fill = ["sh", "-c", "head -c 400M /dev/urandom > /v/random.bin"]
    engine.containers.run(IMAGE, fill, volumes={volume: {"bind": "/v"}}, remove=True)
    admin, error = hub.login("admin")
    assert admin is not None, error
    SESSIONS[KEEPER] = hub.approved_user(admin, KEEPER)
    assert hub.api("POST", f"users/{KEEPER}/server").status_code in (201, 202)  # ready by test 5
    yield hub
    admin.close()
    SESSIONS.pop(KEEPER).close()


def test_1_slow_lane_full_fast_work_still_prompt(lhub: Hub) -> None:
    for i in (1, 2, 3):
        apply(lhub, "VolumeBackup", f"lane-b{i}", {"user": "lane-a", "volumes": ["home"], "backoffLimit": 0})
    wait_for(lambda: status(lhub, "VolumeBackup", "lane-b1").get("phase") == "Running", 30, "backup running")
    time.sleep(1)  # every worker that will take a backup has taken one

    t0 = time.monotonic()
    apply(lhub, "GroupMembership", "lane-team", {"group": "lane-team", "members": ["lane-a"]})
    apply(lhub, "Broadcast", "lane-hello", {"message": "fast lane", "targets": {"users": ["lane-a"]}})

    def fast_done() -> bool:
        group = status(lhub, "GroupMembership", "lane-team")
        return group.get("observedGeneration") == 1 and status(lhub, "Broadcast", "lane-hello").get("phase") in (
            "Completed",
            "Failed",
        )

    wait_for(fast_done, 60, "group change and broadcast done", interval=0.1)
    took = time.monotonic() - t0
    slow = lhub.reconciler_details()["lanes"]["slow"]
    print(f"fast lane: group change + broadcast in {took:.2f} s while the slow lane ran {slow['running']}")
    assert took < 5, f"fast work waited {took:.1f} s behind backups"
    assert slow["busy"] == 1 and slow["running"][0]["key"].startswith("VolumeBackup/")
    assert lhub.api("GET", "groups/lane-team").json()["users"] == ["lane-a"]

    def timed_out() -> list[dict]:
        return [e for e in events(lhub) if e["reason"] == "ReconcileTimedOut" and e["kind"] == "VolumeBackup"]

    first = wait_for(timed_out, 30, "a backup cancelled at the slow lane's deadline", interval=0.5)[0]
    assert f"({SLOW_DEADLINE} s, slow lane)" in first["message"]
    wait_for(lambda: status(lhub, "VolumeBackup", first["name"]).get("phase") == "Failed", 30, "backup failed")


def test_2_stuck_worker_turns_health_503_until_it_ends(lhub: Hub) -> None:
    t0 = time.monotonic()
    spec = {"group": "lane-stuck", "members": []}
    apply(lhub, "GroupMembership", "lane-stuck", spec, labels={"jupyterhub-ds/test-hang": "18"})

    def health() -> requests.Response:
        return requests.get(lhub.reconciler_url + "health", timeout=10)

    body = wait_for(lambda: (x := health()).status_code == 503 and x.json(), 40, "/health 503", interval=0.5)
    assert body == {"status": "stuck"}
    print(f"/health 503 after {time.monotonic() - t0:.1f} s (deadline {FAST_DEADLINE} s)")
    fast = lhub.reconciler_details()["lanes"]["fast"]
    (overdue,) = fast["overdue"]
    assert fast["stuck"] and overdue["key"] == "GroupMembership/lane-stuck" and overdue["stuck"]
    assert overdue["seconds"] > FAST_DEADLINE
    # The lane's other worker still works.
    apply(lhub, "GroupMembership", "lane-other", {"group": "lane-other", "members": ["lane-a"]})
    wait_for(lambda: status(lhub, "GroupMembership", "lane-other").get("observedGeneration") == 1, 5, "other")
    reasons = [e["reason"] for e in events(lhub) if e["name"] == "lane-stuck"]
    assert "ReconcileTimedOut" in reasons
    # Every reconcile of it hangs (the label): deleted, it is not taken again once this one ends.
    assert lhub.api("DELETE", "resources/groupmembership/lane-stuck").status_code == 204
    wait_for(lambda: health().status_code == 200, 40, "/health ok again once it ended", interval=0.5)
    assert not lhub.reconciler_details()["lanes"]["fast"]["stuck"]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def checks(hub: Hub) -> dict[str, float]:
    text = requests.get(hub.reconciler_url + "metrics", headers={"Authorization": f"token {hub.token}"}, timeout=10)
    found = {}
    for line in text.text.splitlines():
        if line.startswith("jhds_token_checks_total{"):
            verdict = line.split('verdict="')[1].split('"')[0]
            found[verdict] = float(line.split()[-1])
    return found


async def flood(url: str, tokens: list[str], concurrency: int = 50) -> list[int]:
    codes: list[int] = []
    queue = iter(tokens)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one() -> None:
            for token in queue:
                async with session.get(url, headers={"Authorization": f"token {token}"}) as r:
                    codes.append(r.status)

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return codes


def test_3_random_8k_tokens_keep_nothing_and_refused_is_not_asked_again(lhub: Hub) -> None:
    pid = lhub.reconciler_details()["pid"]
    url = lhub.reconciler_url + "health/details"
    asyncio.run(flood(url, [os.urandom(4000).hex() for _ in range(500)]))  # warm up: 8,000 characters each
    before, counted = rss_kb(pid), checks(lhub)
    t0 = time.monotonic()
    codes: list[int] = []
    for _ in range(4):  # in batches, so the test itself holds 5,000 tokens at a time, not 20,000
        codes += asyncio.run(flood(url, [os.urandom(4000).hex() for _ in range(5000)]))
    took = time.monotonic() - t0
    same = asyncio.run(flood(url, ["not-a-real-token-0123456789abcdef"] * 1000, concurrency=20))
    grown = (rss_kb(pid) - before) / 1024
    after = checks(lhub)
    print(f"20,000 random 8 KB tokens in {took:.1f} s; reconciler RSS grew {grown:.2f} MB")
    assert set(codes) == {403} and len(codes) == 20000 and set(same) == {403}
    assert grown < 10, f"RSS grew {grown:.1f} MB"
    asked = after.get("hub-refused", 0) - counted.get("hub-refused", 0)
    assert asked == 1, f"the hub was asked {asked} times"
    assert after.get("malformed", 0) - counted.get("malformed", 0) == 20000
    assert after.get("cached-refused", 0) - counted.get("cached-refused", 0) == 999


def keep_view(hub: Hub) -> dict:
    r = hub.as_user(SESSIONS[KEEPER], "GET", f"users/{KEEPER}/keep-alive")
    assert r.status_code == 200, r.text
    return r.json()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def whose(event: dict) -> str | None:
    """The event's subject (before this change: the user who asked, if one did)."""
    if "subject" in event:
        return event["subject"]
    actor = event.get("actor") or ""
    return actor.removeprefix("user:") if actor.startswith("user:") else None


def test_4_keep_alive_storm_is_bounded_in_time_and_history(lhub: Hub) -> None:
    lhub.wait_ready(KEEPER, 180)
    now = datetime.now(UTC)
    activity = {"servers": {"": {"last_activity": now.isoformat()}}}
    assert lhub.api("POST", f"users/{KEEPER}/activity", json=activity).status_code == 200
    apply(
        lhub,
        "IdleCullPolicy",
        "lane-keep",
        {"selector": {"users": [KEEPER]}, "idleTimeout": "10s", "warnBefore": 0, "maxExtension": "1m"},
    )
    wait_for(lambda: keep_view(lhub)["policy"] == "lane-keep", 10, "policy in force")
    post = lambda: lhub.as_user(SESSIONS[KEEPER], "POST", f"users/{KEEPER}/keep-alive", json={"minutes": 60})  # noqa: E731
    assert post().status_code == 200
    others = [(e["time"], e["reason"]) for e in events(lhub) if whose(e) != KEEPER]
    last = at(keep_view(lhub)["servers"][0]["lastActivity"])
    time.sleep(max(0.0, (last + timedelta(seconds=20) - datetime.now(UTC)).total_seconds()))
    for _ in range(40):  # "now + 1 min" each time, 20 s after the last activity (10 s past idle)
        assert post().status_code == 200
    view = keep_view(lhub)
    (server,) = view["servers"]
    bound = at(server["lastActivity"]) + timedelta(seconds=10 + 60)
    print(f"after 41 keep-alives: deadline {server['deadline']}, bound {bound.isoformat()}")
    assert at(server["deadline"]) <= bound + timedelta(seconds=1)

    history = events(lhub)
    mine = [e for e in history if whose(e) == KEEPER]
    assert len(mine) <= PER_SUBJECT, f"{len(mine)} events of {KEEPER} kept"
    kept = {(e["time"], e["reason"]) for e in history}
    assert set(others) <= kept, "another user's or the platform's events were pushed out"

    # A lab may report activity up to an hour ahead (the hub's own limit): it counts as now.
    ahead = datetime.now(UTC) + timedelta(minutes=50)
    activity = {"servers": {"": {"last_activity": ahead.isoformat()}}}
    assert lhub.api("POST", f"users/{KEEPER}/activity", json=activity).status_code == 200
    (server,) = keep_view(lhub)["servers"]
    assert at(server["lastActivity"]) <= datetime.now(UTC) + timedelta(seconds=1)
    assert at(server["deadline"]) <= datetime.now(UTC) + timedelta(seconds=10 + 60 + 2)
