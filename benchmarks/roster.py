"""Roster benchmark: a Roster of 1,000 users in 10 groups applied to a real platform (started
as the tests start it: `scripts/up.sh`, hub + reconciler service + proxy), until its status
says Ready with every user in the hub; then re-applied unchanged (`hubctl reconcile`).

The hub's REST calls are counted by the hub itself (its Prometheus metric
`jupyterhub_request_duration_seconds_count`, per handler and method, read before and after
as the admin): only JupyterHub's own API handlers count, so this script's polling of the
platform's resource API is not in the figures. Baseline in the same run: the same 1,000
users and memberships made one request per user (`POST /users/<name>`, then `POST
/groups/<g>/users` per user), what a script without bulk calls does.

    .venv/bin/python benchmarks/roster.py [--users 1000] [--groups 10]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import docker
import requests
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import Hub, HubApi, cleanup_docker

PLATFORM = "jhds-bench-roster"
ROSTER = "bench-course"
TARGET_SECONDS = 30.0
PAGE = 100  # users per page (the controller's creation page; a listing page holds 5,000)
WRITES = ("POST", "PUT", "PATCH", "DELETE")


class Api(HubApi):
    """The calls this benchmark makes, on the harness's kept-alive session."""

    def status(self) -> dict:
        return self("GET", f"resources/roster/{ROSTER}").json().get("status") or {}


def hub_calls(admin: requests.Session, hub: Hub) -> Counter[str]:
    """JupyterHub's own API requests so far, `METHOD Handler` -> count (from its metrics)."""
    text = admin.get(f"{hub.url}hub/metrics", timeout=30).text
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            handler = s.labels.get("handler", "")
            if s.name.endswith("request_duration_seconds_count") and ".apihandlers." in handler:
                found[f"{s.labels['method']} {handler.rsplit('.', 1)[-1]}"] += int(s.value)
    return found


def roster_doc(users: int, groups: int) -> dict:
    people = [{"name": f"r{i:04d}", "groups": [f"bench-g{i % groups}"]} for i in range(users)]
    return {
        "apiVersion": "jupyterhub-ds/v1",
        "kind": "Roster",
        "metadata": {"name": ROSTER},
        "spec": {"users": people, "removal": "keep", "passwords": "oneTime"},
    }


def wait(what: str, done, timeout: float = 300) -> float:
    t0 = time.perf_counter()
    while not done():
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(0.1)
    return time.perf_counter() - t0


def report(name: str, calls: Counter[str], seconds: float, pages: int) -> dict:
    total = sum(calls.values())
    writes = sum(n for k, n in calls.items() if k.split()[0] in WRITES)
    print(f"{name}: {seconds:.1f} s, {total} hub API calls ({writes} writes), {total / pages:.1f} per page of {PAGE}")
    for key, n in sorted(calls.items()):
        print(f"    {n:6d}  {key}")
    return {"seconds": round(seconds, 2), "calls": total, "writes": writes, "by": dict(calls)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=10)
    args = parser.parse_args()
    pages = math.ceil(args.users / PAGE)
    engine = docker.from_env()
    cleanup_docker(engine, PLATFORM)
    hub = Hub(state_dir=Path(tempfile.mkdtemp(prefix="jhds-bench-roster-")), platform=PLATFORM)
    hub.extra_env.update({"RESYNC_SECONDS": "3600"})  # only this benchmark's changes wake the reconciler
    results: dict = {"users": args.users, "groups": args.groups, "platform": "scripts/up.sh (hub, reconciler, proxy)"}
    try:
        up = hub.up()
        assert up.returncode == 0, f"make up failed:\n{up.stdout}\n{up.stderr}"
        api = Api(hub, timeout=120)
        admin, error = hub.login("admin")
        assert admin is not None, error

        # 1. the roster, applied through the API, until Ready with every user in the hub
        before = hub_calls(admin, hub)
        t0 = time.perf_counter()
        api("POST", "manifests", data=json.dumps([roster_doc(args.users, args.groups)]))
        wait(
            "the roster Ready", lambda: (s := api.status()).get("phase") == "Ready" and s.get("existing") == args.users
        )
        applied = report("apply", hub_calls(admin, hub) - before, time.perf_counter() - t0, pages)
        members = {g["name"]: len(g["users"]) for g in api("GET", "groups").json() if g["name"].startswith("bench-g")}
        assert sum(members.values()) == args.users and len(members) == args.groups, members

        # 2. re-applied unchanged: a reconcile now, with nothing to change
        before = hub_calls(admin, hub)
        t0 = time.perf_counter()
        asked = api("POST", f"resources/roster/{ROSTER}/reconcile", ok=(202,)).json()["requested"]
        wait("the reconcile", lambda: api.status().get("lastHandledReconcileAt") == asked)
        again = report("re-apply unchanged", hub_calls(admin, hub) - before, time.perf_counter() - t0, pages)

        # 3. baseline: the same, one request per user
        before = hub_calls(admin, hub)
        t0 = time.perf_counter()
        for g in range(args.groups):
            api("POST", f"groups/base-g{g}", ok=(201,))
        for i in range(args.users):
            api("POST", f"users/b{i:04d}", ok=(201,))
            api("POST", f"groups/base-g{i % args.groups}/users", json={"users": [f"b{i:04d}"]})
        baseline = report(
            "baseline, one call per user", hub_calls(admin, hub) - before, time.perf_counter() - t0, pages
        )

        results.update({"apply": applied, "reapply": again, "baseline": baseline})
        results["callsRatio"] = round(baseline["calls"] / max(applied["calls"], 1), 1)
        results["timeRatio"] = round(baseline["seconds"] / applied["seconds"], 2)
        print(
            f"\napply {applied['seconds']:.1f} s (target < {TARGET_SECONDS:.0f} s) with {applied['calls']} hub calls; "
            f"baseline {baseline['seconds']:.1f} s with {baseline['calls']}: "
            f"{results['callsRatio']}x fewer calls, {results['timeRatio']}x the speed; "
            f"re-apply: {again['writes']} hub writes, {again['calls']} calls"
        )
        print(json.dumps(results))
        ok = applied["seconds"] < TARGET_SECONDS and again["writes"] == 0
        return 0 if ok else 1
    finally:
        hub.down()
        cleanup_docker(engine, PLATFORM)


if __name__ == "__main__":
    sys.exit(main())
