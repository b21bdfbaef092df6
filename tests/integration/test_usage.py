"""The usage ledger on real labs (issue 26; docs/usage.md), on a platform of its own that
samples every 2 s and surveys storage every 3 s:

- two users in two groups run minimal labs (one burns CPU, one writes a file): `hubctl usage`
  by user and by group reports both, with CPU and storage; the report for one user matches
  the hub's own start (its `started`) and stop (between the stop request and its end);
- a server started while the reconciler is stopped (SIGSTOP), whose record by the hub is
  then lost, is counted once the reconciler is back: its resync opens the session from the
  hub's `started`;
- Prometheus: server-seconds per group, storage per group, never per user;
- a user reads their own usage over REST, not anyone else's nor the report (operators only).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import docker
import pytest
import requests
from sqlalchemy import delete

from reconciler.store import Store
from reconciler.usage.ledger import UsageLedger
from reconciler.usage.tables import SessionRow
from tests.harness import Hub, wait_for

RED, BLUE = "usage-red", "usage-blue"
ALICE, BOB, CARL = "usage-alice", "usage-bob", "usage-carl"
ENV = {"USAGE_SAMPLE_SECONDS": "2", "STORAGE_SURVEY_SECONDS": "3", "RESYNC_SECONDS": "3"}


@pytest.fixture(scope="module")
def uhub(own_platforms) -> Iterator[Hub]:
    h = own_platforms.platform("usage", ENV, users=[ALICE, BOB, CARL])
    for group, members in ((RED, [ALICE, CARL]), (BLUE, [BOB])):
        assert h.api("POST", f"groups/{group}").status_code in (201, 409)
        assert h.api("POST", f"groups/{group}/users", json={"users": members}).status_code == 200
    yield h
    for user in (ALICE, BOB, CARL):
        if h.api("GET", f"users/{user}").json().get("servers"):
            h.stop_server(user)


@pytest.fixture(scope="module")
def ledger(uhub: Hub) -> Iterator[UsageLedger]:
    store = Store(f"sqlite:///{uhub.state_dir / 'jupyterhub.sqlite'}")
    yield UsageLedger(store)
    store.close()


def started_of(hub: Hub, user: str) -> datetime:
    text = hub.api("GET", f"users/{quote(user)}").json()["servers"][""]["started"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def report(hub: Hub, *args: str) -> dict:
    done = hub.hubctl("usage", "-o", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def rows(doc: dict) -> dict[str, dict]:
    return {r[doc["by"]]: r for r in doc["rows"]}


def test_two_users_in_two_groups(uhub: Hub, engine: docker.DockerClient, ledger: UsageLedger) -> None:
    for user in (ALICE, BOB):
        assert uhub.api("POST", f"users/{quote(user)}/server").status_code in (201, 202)
    for user in (ALICE, BOB):
        uhub.wait_ready(user)
    started = {user: started_of(uhub, user) for user in (ALICE, BOB)}
    # the hub recorded each start at its own `started`, exactly
    for user in (ALICE, BOB):
        (session,) = ledger.sessions_of(user)
        assert session.started == started[user] and session.opened_by == "hub" and session.stopped is None
        assert session.groups == ([RED] if user == ALICE else [BLUE])
    uhub.exec(engine, ALICE, "python3 -c 'import time\nt=time.time()\nwhile time.time()-t<3: pass'")
    uhub.exec(engine, BOB, "head -c 4194304 /dev/urandom > $HOME/blob.bin")
    wait_for(
        lambda: (
            (r := rows(report(uhub, "--since", "1h")))
            and r.get(ALICE, {}).get("cpuSeconds", 0) >= 2.5
            and r.get(BOB, {}).get("storageBytes", 0) >= 4194304
        ),
        60,
        "alice's CPU sampled and bob's file surveyed",
        interval=1,
    )
    stop_asked = {}
    stopped = {}
    for user in (ALICE, BOB):
        stop_asked[user] = datetime.now(UTC)
        uhub.stop_server(user)
        stopped[user] = datetime.now(UTC)

    by_user = rows(report(uhub, "--by", "user", "--since", "1h"))
    for user in (ALICE, BOB):
        r = by_user[user]
        low = (stop_asked[user] - started[user]).total_seconds()
        high = (stopped[user] - started[user]).total_seconds()
        assert low - 0.01 <= r["serverSeconds"] <= high + 0.01, (user, r, low, high)
        (session,) = ledger.sessions_of(user)
        assert session.closed_by == "hub" and stop_asked[user] <= session.stopped <= stopped[user]
        assert r["memoryGiBHours"] > 0
    assert by_user[ALICE]["groups"] == [RED] and by_user[BOB]["groups"] == [BLUE]
    assert by_user[ALICE]["cpuSeconds"] >= 2.5 and by_user[BOB]["storageBytes"] >= 4194304
    by_group = rows(report(uhub, "--by", "group", "--since", "1h"))
    assert by_group[RED]["serverSeconds"] == pytest.approx(by_user[ALICE]["serverSeconds"], abs=0.01)
    assert by_group[BLUE]["serverSeconds"] == pytest.approx(by_user[BOB]["serverSeconds"], abs=0.01)
    # (a storage survey may land between the two reports: the lab writes meanwhile)
    assert by_group[BLUE]["storageBytes"] == pytest.approx(by_user[BOB]["storageBytes"], rel=0.01)
    # the other formats, and the REST API for the user themself's shape
    table = uhub.hubctl("usage", "--by", "group", "--since", "1h")
    assert table.returncode == 0 and RED in table.stdout and BLUE in table.stdout, table.stderr
    csv = uhub.hubctl("usage", "--since", "1h", "-o", "csv")
    assert csv.stdout.splitlines()[0] == "user,groups,serverSeconds,cpuSeconds,memoryGiBHours,gpuSeconds,storageBytes"
    mine = uhub.api("GET", f"users/{ALICE}/usage", params={"since": "1h"}).json()
    assert mine["rows"][0]["user"] == ALICE and mine["rows"][0]["serverSeconds"] == by_user[ALICE]["serverSeconds"]
    # Prometheus: per group, never per user
    metrics = requests.get(
        uhub.reconciler_url + "metrics", headers={"Authorization": f"token {uhub.token}"}, timeout=10
    )
    assert f'jhds_usage_server_seconds_total{{group="{RED}"}}' in metrics.text
    assert f'jhds_usage_storage_bytes{{group="{BLUE}"}}' in metrics.text
    usage_lines = [line for line in metrics.text.splitlines() if line.startswith("jhds_usage_")]
    assert not [line for line in usage_lines if ALICE in line or BOB in line]


def test_a_server_started_while_the_reconciler_is_stopped_is_counted(uhub: Hub, ledger: UsageLedger) -> None:
    pid = uhub.reconciler_details()["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        assert uhub.api("POST", f"users/{quote(CARL)}/server").status_code in (201, 202)
        uhub.wait_ready(CARL)
        started = started_of(uhub, CARL)
        # the hub's own record is lost (a hub of an older version, a failed write): only the
        # hub's REST record is left to go by
        with ledger.store.session() as s:
            s.execute(delete(SessionRow).where(SessionRow.user == CARL))
        time.sleep(2)
    finally:
        os.kill(pid, signal.SIGCONT)
    session = wait_for(lambda: ledger.sessions_of(CARL), 30, "the resync opened carl's session", interval=0.5)[0]
    assert session.started == started and session.opened_by == "reconciler" and session.stopped is None
    assert session.groups == [RED]
    r = rows(report(uhub, "--user", CARL, "--since", "1h"))[CARL]
    assert r["serverSeconds"] >= (datetime.now(UTC) - started).total_seconds() - 5
    uhub.stop_server(CARL)
    (session,) = ledger.sessions_of(CARL)
    assert session.closed_by == "hub"


def test_a_user_reads_their_own_usage_and_no_one_elses(uhub: Hub) -> None:
    admin, error = uhub.login("admin")
    assert admin is not None, error
    dana = uhub.approved_user(admin, "usage-dana")
    try:
        mine = uhub.as_user(dana, "GET", "users/usage-dana/usage", params={"since": "1h"})
        assert mine.status_code == 200, mine.text
        (row,) = mine.json()["rows"]
        assert row["user"] == "usage-dana" and row["serverSeconds"] == 0
        assert uhub.as_user(dana, "GET", f"users/{ALICE}/usage").status_code == 403
        assert uhub.as_user(dana, "GET", "usage").status_code == 403  # operators only
        bad = uhub.api("GET", "usage", params={"since": "last week"})
        assert bad.status_code == 400 and "since must be a duration" in bad.json()["message"]
    finally:
        dana.close()
        admin.close()
