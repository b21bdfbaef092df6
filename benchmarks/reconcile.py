"""Reconciler benchmark: submit-to-applied latency of a GroupMembership change; a resync pass
with nothing to do over 1,000 users and 200 resources (time and hub API requests).

Baselines, measured in the same run:
- latency: the same membership change made directly with the hub's REST API
  (POST/DELETE /hub/api/groups/<g>/users) until GET /hub/api/groups/<g> shows it;
- resync pass: the same pass with the hub snapshot disabled (every reconcile reads the hub live).

The pass runs in this process against the hub's database and REST API (the reconciler
service inside the hub keeps running, quiet: RESYNC_SECONDS=3600).

    .venv/bin/python benchmarks/reconcile.py [--changes 50] [--users 1000] [--resources 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.clients.hub import PAGINATION, HubClient
from reconciler.context import Context, HubSnapshot
from reconciler.controllers import CONTROLLERS
from reconciler.loop import Reconciler
from reconciler.result import Outcome
from reconciler.store import Store
from tests.harness import Hub, HubApi, cleanup_docker
from vocabulary.settings import load_settings

PLATFORM = "jhds-bench-rec"
KIND = "groupmembership"
POLL = 0.02  # seconds between GETs of the group while waiting for a change


# --- the hub's REST API, one keep-alive session -------------------------------------------
class Api(HubApi):
    """The calls this benchmark makes, on the harness's kept-alive session."""

    def members(self, group: str) -> set[str]:
        return set(self("GET", f"groups/{group}").json()["users"])

    def wait_members(self, group: str, want: set[str], t0: float, timeout: float = 30) -> float:
        """Seconds from `t0` until the hub's group has exactly `want`."""
        while True:
            if self.members(group) == want:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"group {group} did not reach {sorted(want)} within {timeout} s")
            time.sleep(POLL)

    def create_users(self, names: list[str], batch: int = 500) -> None:
        for i in range(0, len(names), batch):
            self("POST", "users", json={"usernames": names[i : i + batch]}, ok=(201, 409))

    def apply(self, docs: list[dict]) -> list[dict]:
        return self("POST", "manifests", data=json.dumps(docs)).json()["results"]

    def wait_converged(self, names: set[str], timeout: float = 120) -> float:
        """Seconds until every named GroupMembership has observedGeneration == generation."""
        t0 = time.perf_counter()
        while True:
            items = self("GET", f"resources/{KIND}").json()["items"]
            done = {
                i["metadata"]["name"]
                for i in items
                if (i.get("status") or {}).get("observedGeneration") == i["metadata"]["generation"]
            }
            if names <= done:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"{len(names - done)} resources not converged within {timeout} s")
            time.sleep(0.2)


def gm(name: str, group: str, members: list[str], prune: bool = True) -> dict:
    return {
        "apiVersion": "jupyterhub-ds/v1",
        "kind": "GroupMembership",
        "metadata": {"name": name},
        "spec": {"group": group, "members": members, "prune": prune},
    }


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


# --- 1. submit-to-applied latency ------------------------------------------------------------
def latency(api: Api, changes: int, rng: random.Random) -> tuple[list[float], list[float]]:
    users = [f"lat{i}" for i in range(10)]
    api.create_users(users)
    targets = [sorted({users[i % 10], users[(i + 1) % 10], users[(i + 3) % 10]}) for i in range(changes + 1)]

    # Through the reconciler: POST a changed manifest (like `hubctl apply`), wait for the group.
    api.apply([gm("bench-latency", "bench-latency", targets[0])])
    api.wait_converged({"bench-latency"})
    via_reconciler = []
    for want in targets[1:]:
        time.sleep(rng.uniform(0, 0.5))  # do not stay in phase with the service's 0.5 s store poll
        t0 = time.perf_counter()
        api.apply([gm("bench-latency", "bench-latency", want)])
        via_reconciler.append(api.wait_members("bench-latency", set(want), t0))
    api.wait_converged({"bench-latency"})
    api("DELETE", f"resources/{KIND}/bench-latency")  # out of the way of the resync pass

    # Baseline: the same changes made directly with the hub's REST API.
    api("POST", "groups/bench-direct", ok=(201, 409))
    api("POST", "groups/bench-direct/users", json={"users": targets[0]})
    current = set(targets[0])
    direct = []
    for want in targets[1:]:
        add, remove = sorted(set(want) - current), sorted(current - set(want))
        t0 = time.perf_counter()
        if add:
            api("POST", "groups/bench-direct/users", json={"users": add})
        if remove:
            api("DELETE", "groups/bench-direct/users", json={"users": remove})
        direct.append(api.wait_members("bench-direct", set(want), t0))
        current = set(want)
    api("DELETE", "groups/bench-direct")
    return via_reconciler, direct


# --- 2. a resync pass with nothing to do -----------------------------------------------------
class NoSnapshotContext(Context):
    """The baseline: no hub snapshot, so every reconcile reads the hub live."""

    async def refresh_snapshot(self) -> HubSnapshot | None:  # type: ignore[override]
        return None


class CountingHubClient(HubClient):
    """HubClient that also tallies its requests by method and path (`groups/<name>` as one)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.by_path: Counter[str] = Counter()

    async def request(self, method: str, path: str, *args, **kwargs):
        base = path.split("?")[0]
        self.by_path[f"{method} {base.split('/')[0] + '/<name>' if '/' in base else base}"] += 1
        return await super().request(method, path, *args, **kwargs)


@dataclass
class Pass:
    seconds: float
    resync_seconds: float  # of which: resync() (the hub snapshot and the store's key list)
    requests: int
    reconciles: int
    results: dict[str, int]
    status_writes: int
    new_events: int
    by_path: dict[str, int]


async def one_pass(hub: Hub, db_url: str, snapshot: bool) -> Pass:
    store = Store(db_url)
    writes = 0
    write_status = store.write_status

    def counting_write_status(*args, **kwargs):  # count status rows rewritten by the pass
        nonlocal writes
        writes += 1
        return write_status(*args, **kwargs)

    store.write_status = counting_write_status  # type: ignore[method-assign]
    async with CountingHubClient(hub.url + "hub/api", hub.token) as client:
        await client.request("GET", "")  # open the connection outside the timing, like a warm service
        cls = Context if snapshot else NoSnapshotContext
        ctx = cls(store=store, hub=client, settings=load_settings(hub.env))
        reconciler = Reconciler(ctx, CONTROLLERS, resync_seconds=3600, workers=1)
        events_before = len(store.events(limit=10**9))
        requests_before = client.requests
        warm_up = Counter(client.by_path)
        results: dict[str, int] = {}
        t0 = time.perf_counter()
        await reconciler.resync()
        t_resync = time.perf_counter() - t0
        while (key := reconciler.queue.pop()) is not None:
            result = await reconciler.process(key)
            reconciler.queue.done(key)
            results[result.value] = results.get(result.value, 0) + 1
        seconds = time.perf_counter() - t0
        n_requests = client.requests - requests_before
        by_path = client.by_path - warm_up
        new_events = len(store.events(limit=10**9)) - events_before
    store.close()
    return Pass(seconds, t_resync, n_requests, sum(results.values()), results, writes, new_events, dict(by_path))


def passes(hub: Hub, db_url: str, snapshot: bool, repeat: int) -> Pass:
    """The pass `repeat` times; the median by time (request counts are the same every time)."""
    runs = [asyncio.run(one_pass(hub, db_url, snapshot)) for _ in range(repeat)]
    for run in runs:
        problems = []
        if set(run.results) != {Outcome.SUCCESS}:
            problems.append(f"results {run.results}")
        if run.new_events:
            problems.append(f"{run.new_events} new events")
        if problems:
            print(f"WARNING: a pass with nothing to do was not a no-op: {'; '.join(problems)}", file=sys.stderr)
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def add_resources(api: Api, users: list[str], start: int, stop: int, rng: random.Random) -> float:
    names = [f"bench-g{i:03d}" for i in range(start, stop)]
    docs = [gm(name, name, sorted(rng.sample(users, rng.randint(3, 6)))) for name in names]
    api.apply(docs)
    return api.wait_converged(set(names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50, help="GroupMembership changes timed (default 50)")
    parser.add_argument("--users", type=int, default=1000, help="hub users for the resync pass (default 1000)")
    parser.add_argument("--resources", type=int, default=200, help="GroupMemberships at the end (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each resync pass; median (default 3)")
    args = parser.parse_args()
    rng = random.Random(3)
    half = args.resources // 2

    client = docker.from_env()
    cleanup_docker(client, PLATFORM)
    state = Path(tempfile.mkdtemp(prefix="jhds-bench-rec-"))
    hub = Hub(state_dir=state, platform=PLATFORM, extra_env={"RESYNC_SECONDS": "3600"})
    db_url = f"sqlite:///{hub.state_dir / 'jupyterhub.sqlite'}"
    try:
        up = hub.up()
        assert up.returncode == 0, f"make up failed:\n{up.stdout}\n{up.stderr}"
        api = Api(hub, timeout=60)
        via_reconciler, direct = latency(api, args.changes, rng)

        users = [f"u{i:04d}" for i in range(args.users)]
        t0 = time.perf_counter()
        api.create_users(users)
        t_users = time.perf_counter() - t0
        page = api("GET", "users", params={"limit": 1}, headers={"Accept": PAGINATION}).json()
        hub_users = page["_pagination"]["total"]
        converge_small = add_resources(api, users, 0, half, rng)
        small = passes(hub, db_url, snapshot=True, repeat=args.repeat)
        converge_big = add_resources(api, users, half, args.resources, rng)
        big = passes(hub, db_url, snapshot=True, repeat=args.repeat)
        live = passes(hub, db_url, snapshot=False, repeat=args.repeat)
    finally:
        hub.down()
        cleanup_docker(client, PLATFORM)
        shutil.rmtree(state, ignore_errors=True)

    p50, p99 = statistics.median(via_reconciler), pct(via_reconciler, 99)
    b50, b99 = statistics.median(direct), pct(direct, 99)
    print(f"GroupMembership change, submit -> hub group shows it (n={len(via_reconciler)}, poll {POLL * 1000:.0f} ms):")
    print(f"  via POST /hub/api/manifests + reconciler: p50 {p50:6.3f} s  p99 {p99:6.3f} s  (target p50 < 1 s)")
    print(f"  direct hub REST API (baseline):          p50 {b50:6.3f} s  p99 {b99:6.3f} s")
    print(f"  ratio reconciler / direct:               p50 {p50 / b50:6.1f}x   p99 {p99 / b99:6.1f}x")
    print(f"set-up: {args.users} users created in {t_users:.2f} s (batch API; {hub_users} users on the hub)")
    print(f"  {half} + {args.resources - half} resources converged in {converge_small:.2f} + {converge_big:.2f} s")
    print(f"resync pass with nothing to do ({hub_users} hub users; median of {args.repeat}):")
    print("  resources  snapshot  pass (s)  of which resync (s)  hub requests  status writes  new events")
    for n, run, label in ((half, small, "on"), (args.resources, big, "on"), (args.resources, live, "off")):
        print(
            f"  {n:9d}  {label:>8}  {run.seconds:8.3f}  {run.resync_seconds:19.3f}  {run.requests:12d}"
            f"  {run.status_writes:13d}  {run.new_events:10d}"
        )
    print(f"  reconciles per pass: {small.reconciles} / {big.reconciles} / {live.reconciles}, results: {big.results}")
    print(f"  requests, {half} -> {args.resources} resources (snapshot on): {small.requests} -> {big.requests}")
    for n, run, label in ((half, small, "on"), (args.resources, big, "on"), (args.resources, live, "off")):
        tally = ", ".join(f"{count} x {what}" for what, count in sorted(run.by_path.items()))
        print(f"    {n} resources, snapshot {label}: {tally}")
    print(
        f"  ratio snapshot / live ({args.resources} resources): time {big.seconds / live.seconds:5.2f}x, "
        f"requests {big.requests / live.requests:5.2f}x  (target: pass < 1 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
