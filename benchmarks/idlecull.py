"""Idle-culling benchmark (fake hub): one policy pass over 1,000 users, in hub requests and time.

The hub is simulated: an in-process fake of JupyterHub's REST API (aiohttp on 127.0.0.1, a free
port) holds N users, each with a running default server; a fixed fraction (10%) were last active
more than an hour ago (61 min to 5 h), the rest within the last 50 minutes. It answers what both
clients call, as JupyterHub 5 does: `GET /hub/api/` (version), `GET /hub/api/users` with the
`state` filter and the pagination protocol (`Accept: application/jupyterhub-pagination+json`;
default page 50 = JupyterHub's api_page_default_limit, which hub_config leaves alone; max 5000 =
the api_page_max_limit hub_config sets), and `DELETE .../server` / `.../servers/<name>`. It counts
every request it receives, per run.

Ours: one reconcile of an IdleCullPolicy (`idleTimeout: 1h`, `warnBefore: 0`: no notices, so no
engine call; the engine here fails if asked) from a temporary SQLite store, through `HubClient`,
then the status write the loop does after it. Also: three policies (everyone / a group / another
group, by priority, users spread over the groups) reconciled one after another with one Context,
as a resync pass does, to show the active-user listing is shared (`Context.active_users`, 2 s).

Baseline, same run, same users (fresh hub state): jupyterhub-idle-culler's `cull_idle`
(inactive_limit 3600) with its default page size (0: the hub's default, 50), and with
`api_page_size=5000` (the best it can be configured to do on our hub).

Each pass is followed by a second one right after it (nothing is idle any more: the steady state
of most passes). Every run starts from fresh hub state and a fresh store; times are the median of
--repeat runs; request counts are the same every run.

    .venv/bin/python benchmarks/idlecull.py [--users 1000] [--idle 0.1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import math
import random
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
from aiohttp import web
from jupyterhub_idle_culler import cull_idle

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.api import parse_resource
from reconciler.api.idlecullpolicy import IdleCullPolicyStatus
from reconciler.clients.docker import Engine
from reconciler.clients.hub import PAGE_LIMIT, PAGINATION, HubClient
from reconciler.context import Context
from reconciler.controllers.idlecullpolicy import KIND, reconcile
from reconciler.store import Store
from vocabulary.settings import load_settings

API = "jupyterhub-ds/v1"
HUB_VERSION = "5.2.1"
TOKEN = "bench-token"
DEFAULT_LIMIT = 50  # JupyterHub's api_page_default_limit (hub_config does not change it)
MAX_LIMIT = PAGE_LIMIT  # api_page_max_limit, as hub_config sets it
IDLE_LIMIT = 3600  # seconds: idleTimeout 1h, and idle-culler's inactive_limit
GROUPS = ([], ["physics"], ["chemistry"], ["physics", "chemistry"])  # user i gets GROUPS[i % 4]


def iso(t: datetime) -> str:
    """JupyterHub's isoformat: naive UTC with a `Z`."""
    return t.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def make_users(n: int, idle_fraction: float, now: datetime, rng: random.Random) -> tuple[list[dict], set[str]]:
    """N user models (JupyterHub 5, `servers` as an admin token sees them), and the idle ones."""
    idle = set(rng.sample(range(n), round(n * idle_fraction)))
    users, idle_names = [], set()
    for i in range(n):
        name = f"u{i:04d}"
        # A gap of >= 1 min either side of the timeout, so both clients decide alike whatever
        # their own clock reads during the run.
        ago = rng.uniform(IDLE_LIMIT + 60, 5 * 3600) if i in idle else rng.uniform(0, IDLE_LIMIT - 600)
        last = now - timedelta(seconds=ago)
        started = last - timedelta(seconds=rng.uniform(0, 8 * 3600))
        if i in idle:
            idle_names.add(name)
        server = {
            "name": "",
            "full_name": f"{name}/",
            "last_activity": iso(last),
            "started": iso(started),
            "pending": None,
            "ready": True,
            "stopped": False,
            "url": f"/user/{name}/",
            "user_options": {},
            "progress_url": f"/hub/api/users/{name}/server/progress",
            "full_url": None,
            "full_progress_url": None,
            "state": {},
        }
        users.append(
            {
                "kind": "user",
                "name": name,
                "admin": i == 0,
                "roles": ["admin" if i == 0 else "user"],
                "groups": GROUPS[i % len(GROUPS)],
                "server": f"/user/{name}/",
                "pending": None,
                "created": iso(started - timedelta(days=30)),
                "last_activity": iso(last),
                "auth_state": None,
                "servers": {"": server},
            }
        )
    return users, idle_names


# --- the fake hub ------------------------------------------------------------------------------
class FakeHub:
    """JupyterHub's REST API, as far as the culler and idle-culler use it; counts every request."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.counts: Counter[str] = Counter()
        self.stopped: list[tuple[str, str]] = []
        self._runner: web.AppRunner | None = None

    def load(self, users: list[dict[str, Any]]) -> None:
        """Fresh state (every server running again) and fresh counters."""
        self.users = {u["name"]: copy.deepcopy(u) for u in users}  # insertion order: JupyterHub's id order
        self.counts.clear()
        self.stopped = []

    def reset_counts(self) -> None:
        self.counts.clear()
        self.stopped = []

    async def start(self) -> str:
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/hub/api/", self._version)
        app.router.add_get("/hub/api/users", self._list_users)
        app.router.add_delete("/hub/api/users/{name}/server", self._stop)
        app.router.add_delete("/hub/api/users/{name}/servers/{server}", self._stop)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # a free port, chosen by the kernel
        site = web.SockSite(self._runner, sock)
        await site.start()
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hub/api"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"token {TOKEN}":
            return web.json_response({"status": 403, "message": "bad token"}, status=403)
        what = "other"
        if request.method == "GET" and request.path == "/hub/api/":
            what = "version"
        elif request.method == "GET" and request.path == "/hub/api/users":
            what = "listing"
        elif request.method == "DELETE":
            what = "stop"
        self.counts[what] += 1
        return await handler(request)

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": HUB_VERSION})

    async def _list_users(self, request: web.Request) -> web.Response:
        state = request.query.get("state")
        users = list(self.users.values())
        if state == "active":
            users = [u for u in users if u["servers"]]
        elif state == "ready":
            users = [u for u in users if any(s["ready"] for s in u["servers"].values())]
        elif state == "inactive":
            users = [u for u in users if not u["servers"]]
        elif state:
            return web.json_response({"status": 400, "message": f"Unrecognized state filter: {state!r}"}, status=400)
        accepts = {s.strip().lower() for s in request.headers.get("Accept", "").split(",")}
        paginated = PAGINATION in accepts
        # Like JupyterHub: without the pagination media type, the default page is the max.
        try:
            offset = abs(int(request.query.get("offset", 0)))
            limit = abs(int(request.query.get("limit", DEFAULT_LIMIT if paginated else MAX_LIMIT)))
        except ValueError:
            return web.json_response({"status": 400, "message": "offset and limit must be integers"}, status=400)
        limit = max(1, min(limit, MAX_LIMIT))
        items = users[offset : offset + limit]
        if not paginated:
            return web.json_response(items)
        total, nxt = len(users), None
        if offset + limit < total:
            url = request.url.update_query(offset=offset + limit, limit=limit)
            nxt = {"offset": offset + limit, "limit": limit, "url": str(url)}
        page = {"offset": offset, "limit": limit, "total": total, "next": nxt}
        return web.json_response({"items": items, "_pagination": page})

    async def _stop(self, request: web.Request) -> web.Response:
        name, server = request.match_info["name"], request.match_info.get("server", "")
        user = self.users.get(name)
        if user is None:
            return web.json_response({"status": 404, "message": "Not Found"}, status=404)
        if server not in user["servers"]:
            return web.json_response({"status": 400, "message": f"{name}/{server} is not running"}, status=400)
        del user["servers"][server]  # stopped at once (a real hub answers 202 if the spawner is slow)
        if not server:
            user["server"], user["pending"] = None, None
        self.stopped.append((name, server))
        return web.Response(status=204)


# --- the two clients -----------------------------------------------------------------------------
@dataclass
class Run:
    seconds: float
    counts: Counter[str]
    stopped: list[tuple[str, str]]
    client_requests: int | None = None  # HubClient.requests (ours only): must equal the hub's count
    by_policy: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.counts.values())


def policy(name: str, priority: int = 0, groups: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"idleTimeout": "1h", "warnBefore": 0, "priority": priority}
    if groups:
        spec["selector"] = {"groups": groups}
    return {"apiVersion": API, "kind": KIND, "metadata": {"name": name}, "spec": spec}


def no_engine() -> docker.DockerClient:
    raise AssertionError("warnBefore 0: the pass must not ask the engine for anything")


async def ours(hub: FakeHub, url: str, docs: list[dict[str, Any]], db: Path) -> tuple[Run, Run]:
    """One pass over the policies (one reconcile each, then its status write), then a second pass.
    Each pass has its own Context (the second must not reuse the first's listing)."""
    store = Store(f"sqlite:///{db}")
    store.apply([parse_resource(d) for d in docs], "api")
    settings = load_settings({"JUPYTERHUB_STATE_DIR": str(db.parent)})
    runs = []
    async with HubClient(url, TOKEN) as client:
        for _ in range(2):
            hub.reset_counts()
            before = client.requests
            ctx = Context(store=store, hub=client, settings=settings, engine=Engine(factory=no_engine))
            objs = [store.get(KIND, d["metadata"]["name"]) for d in docs]
            by_policy = {}
            t0 = time.perf_counter()
            for obj in objs:
                assert obj is not None
                result = await reconcile(obj, ctx)
                await asyncio.to_thread(store.write_status, KIND, obj.name, result.status.dump())
                assert isinstance(result.status, IdleCullPolicyStatus)
                by_policy[obj.name] = sum(e.state == "Stopped" for e in result.status.servers)
            seconds = time.perf_counter() - t0
            runs.append(Run(seconds, Counter(hub.counts), list(hub.stopped), client.requests - before, by_policy))
    store.close()
    return runs[0], runs[1]


async def idle_culler(hub: FakeHub, url: str, page_size: int) -> tuple[Run, Run]:
    logger = logging.getLogger("bench.idle-culler")
    logger.setLevel(logging.WARNING)  # it logs every cull at INFO
    runs = []
    for _ in range(2):
        hub.reset_counts()
        t0 = time.perf_counter()
        await cull_idle(url=url, api_token=TOKEN, inactive_limit=IDLE_LIMIT, logger=logger, api_page_size=page_size)
        runs.append(Run(time.perf_counter() - t0, Counter(hub.counts), list(hub.stopped)))
    return runs[0], runs[1]


def median_run(runs: list[Run]) -> Run:
    """The run of median time (counts are the same in every run; checked)."""
    for r in runs[1:]:
        assert r.counts == runs[0].counts and sorted(r.stopped) == sorted(runs[0].stopped), "runs differ"
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


async def bench(n: int, idle_fraction: float, repeat: int, tmp: Path) -> dict[str, Any]:
    users, idle = make_users(n, idle_fraction, datetime.now(UTC), random.Random(7))
    expected = {(name, "") for name in idle}
    one = [policy("everyone")]
    three = [policy("everyone"), policy("physics", 10, ["physics"]), policy("chemistry", 20, ["chemistry"])]
    hub = FakeHub()
    url = await hub.start()
    cases: dict[str, Callable[[int], Awaitable[tuple[Run, Run]]]] = {
        "ours-1": lambda k: ours(hub, url, one, tmp / f"one-{k}.sqlite"),
        "ours-3": lambda k: ours(hub, url, three, tmp / f"three-{k}.sqlite"),
        "ic-default": lambda k: idle_culler(hub, url, 0),
        "ic-5000": lambda k: idle_culler(hub, url, MAX_LIMIT),
    }
    out: dict[str, tuple[Run, Run]] = {}
    try:
        for case, run in cases.items():
            firsts, seconds = [], []
            for k in range(repeat):
                hub.load(users)
                first, second = await run(k)
                firsts.append(first)
                seconds.append(second)
            out[case] = (median_run(firsts), median_run(seconds))
    finally:
        await hub.stop()
    for case, (first, second) in out.items():
        assert set(first.stopped) == expected, f"{case} stopped {len(first.stopped)}, expected {len(expected)}"
        assert len(first.stopped) == len(set(first.stopped)), f"{case} stopped a server twice"
        assert not second.stopped, f"{case}: the second pass stopped {len(second.stopped)}"
        for r in (first, second):
            assert r.client_requests is None or r.client_requests == r.requests, f"{case}: counts disagree"
            assert r.counts["other"] == 0, f"{case}: unexpected requests"
    return {"runs": out, "idle": len(idle), "users": n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000, help="hub users, each with a running server (default 1000)")
    parser.add_argument("--idle", type=float, default=0.1, help="fraction idle past the 1 h timeout (default 0.1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each pass; median time (default 3)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="jhds-bench-idle-"))
    try:
        res = asyncio.run(bench(args.users, args.idle, args.repeat, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    runs = res["runs"]
    print(
        f"idle-culling pass over {res['users']:,} hub users, {res['users']:,} running servers, "
        f"{res['idle']} idle > 1 h (fake hub on 127.0.0.1; median of {args.repeat}):"
    )
    print("                                              hub requests  version  listing  stops  pass (s)")
    rows = (
        ("ours-1", "ours, 1 IdleCullPolicy"),
        ("ours-3", "ours, 3 IdleCullPolicies (one pass)"),
        ("ic-default", "idle-culler, default page size (50)"),
        ("ic-5000", f"idle-culler, api_page_size={MAX_LIMIT}"),
    )
    for which, label in (("culls", 0), ("nothing idle", 1)):
        print(f"  {which}:")
        for case, name in rows:
            r = runs[case][label]
            c = r.counts
            print(
                f"    {name:<40} {r.requests:12d}  {c['version']:7d}  {c['listing']:7d}  {c['stop']:5d}"
                f"  {r.seconds:8.3f}"
            )
    ours1, base, base5k, ours3 = runs["ours-1"][0], runs["ic-default"][0], runs["ic-5000"][0], runs["ours-3"][0]
    print(f"  stopped: the same {len(ours1.stopped)} servers in every run (asserted); ours' HubClient.requests agree")
    print(f"  3 policies, stops by policy: {', '.join(f'{k} {v}' for k, v in ours3.by_policy.items())}")
    pages = math.ceil(res["users"] / DEFAULT_LIMIT)
    print(
        f"  listing requests per pass: ours ceil(active/{PAGE_LIMIT}) = {ours1.counts['listing']}, "
        f"idle-culler ceil(ready/{DEFAULT_LIMIT}) = {pages} (+1 version request)"
    )
    for label, b in (("default page size", base), (f"api_page_size={MAX_LIMIT}", base5k)):
        steady_o, steady_b = runs["ours-1"][1], runs["ic-default" if b is base else "ic-5000"][1]
        print(
            f"  ratio ours / idle-culler ({label}): requests {ours1.requests / b.requests:5.2f}x "
            f"(nothing idle: {steady_o.requests / steady_b.requests:5.2f}x), "
            f"listing {ours1.counts['listing'] / b.counts['listing']:5.2f}x, time {ours1.seconds / b.seconds:5.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
