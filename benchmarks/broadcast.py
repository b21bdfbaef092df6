"""Broadcast benchmark: the delivery core against 1,000 simulated labs; a broadcast to real labs.

1. Simulated labs: one aiohttp app on 127.0.0.1, in a process of its own, serving 1,000 base
   URLs `/user/u0000/` ... `/user/u0999/` with the notifications extension's ingest endpoint
   (answers 200 `{"success": true, "notification_id": ...}` at once); 10 of them (every 100th,
   spread over the list) never answer. Ours: `reconciler.delivery.deliver_all` with the default
   `Limits()` except a shorter deadline (`--deadline`, default 10 s instead of 60 s, to keep
   the run short). Baseline, same run, same app: the seed's method, Tornado's `AsyncHTTPClient`
   with its default settings (max_clients=10), `asyncio.gather` over all targets, 5 s request
   and connect timeouts. Each method runs in a fresh client process, so the peak memory
   (VmHWM: the high-water mark of the process's resident set) is its own.
2. Real labs: a hub (`tests.harness.Hub`, platform `jhds-bench-bc`) with 10 running labs; a
   broadcast submitted with `POST /hub/api/notifications` and polled every 50 ms until it is
   Completed: submit -> last outcome recorded, and the hub API requests the reconciler made for
   it (the hub's request log lines `(reconciler@127.0.0.1)`), for 10 targets and for 2.

    .venv/bin/python benchmarks/broadcast.py [--deadline 10] [--no-labs] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.api.broadcast import BroadcastSpec
from reconciler.broadcast_runs import payload
from reconciler.clients.lab import INGEST, Limits, Result, Target, deliver_all
from reconciler.service import run as run_service_loop

PLATFORM = "jhds-bench-bc"
N_LABS = 1000
FROZEN = {f"u{i:04d}" for i in range(50, N_LABS, 100)}  # 10 that never answer, spread out
SEED_TIMEOUT = 5.0  # the seed's request_timeout and connect_timeout
REAL_LABS = 10
POLL = 0.05  # seconds between GETs of the broadcast while waiting
MESSAGE = "Hub maintenance at 18:00: please save your work"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def rss_mib(field: str) -> float:
    """VmRSS / VmHWM of this process, from /proc (per address space: not inherited over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


# --- 1. the simulated labs: one aiohttp app, in its own process -----------------------------
def serve_labs(conn) -> None:  # the server process
    asyncio.run(_serve_labs(conn))


async def _serve_labs(conn) -> None:
    served = Counter()

    async def ingest(request: web.Request) -> web.Response:
        user = request.match_info["user"]
        if user in FROZEN:
            await asyncio.Event().wait()  # never answers
        body = await request.json()
        if not isinstance(body, dict) or not body.get("message"):
            return web.json_response({"success": False, "error": "message is required"}, status=400)
        served[user] += 1
        return web.json_response({"success": True, "notification_id": f"{user}-{served[user]}"})

    app = web.Application()
    app.router.add_post(f"/user/{{user:u[0-9]{{4}}}}/{INGEST}", ingest)
    runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    conn.send(runner.addresses[0][1])
    cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    await stop.wait()
    conn.send(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0)  # CPU spent serving
    await runner.cleanup()


def targets_for(port: int) -> list[Target]:
    base = f"http://127.0.0.1:{port}"
    return [Target(f"u{i:04d}", "", f"{base}/user/u{i:04d}/{INGEST}", f"token-{i:04d}") for i in range(N_LABS)]


# --- the two clients, each in a fresh process -----------------------------------------------
async def run_ours(targets: list[Target], body: dict[str, Any], limits: Limits, trace: bool) -> dict[str, Any]:
    """deliver_all with `limits`; per target: seconds from the start until on_result."""
    recorded: dict[str, tuple[str, float]] = {}
    sent: dict[int, float] = {}
    attempts: list[float] = []  # seconds from sending a request to its answer (trace only)
    session = None
    if trace:  # the same session deliver_all makes, plus a trace of each request's own time
        tc = aiohttp.TraceConfig()

        async def start(_s, ctx, _p) -> None:
            sent[id(ctx)] = time.perf_counter()

        async def end(_s, ctx, _p) -> None:
            attempts.append(time.perf_counter() - sent.pop(id(ctx)))

        tc.on_request_start.append(start)
        tc.on_request_end.append(end)
        connector = aiohttp.TCPConnector(limit=limits.concurrency, limit_per_host=0, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, trace_configs=[tc])
    t0 = time.perf_counter()

    async def on_result(result: Result) -> None:
        recorded[result.target.user] = (result.outcome, time.perf_counter() - t0)

    try:
        await deliver_all(targets, body, on_result, limits, session=session)
    finally:
        if session is not None:
            await session.close()
    return {"recorded": recorded, "returned": time.perf_counter() - t0, "attempts": attempts}


async def run_seed(targets: list[Target], body: dict[str, Any]) -> dict[str, Any]:
    """The seed's method: AsyncHTTPClient() defaults, asyncio.gather over all targets."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

    client = AsyncHTTPClient()  # SimpleAsyncHTTPClient, max_clients=10
    data = json.dumps(body)
    recorded: dict[str, tuple[str, float]] = {}
    t0 = time.perf_counter()

    async def send(t: Target) -> None:
        request = HTTPRequest(
            t.url,
            method="POST",
            headers={"Authorization": f"token {t.token}", "Content-Type": "application/json"},
            body=data,
            request_timeout=SEED_TIMEOUT,
            connect_timeout=SEED_TIMEOUT,
        )
        try:
            r = await client.fetch(request)
            outcome = "delivered" if r.code == 200 else "failed"
        except HTTPClientError as e:
            outcome = "timeout" if e.code == 599 else "failed"
        except Exception:
            outcome = "failed"
        recorded[t.user] = (outcome, time.perf_counter() - t0)

    await asyncio.gather(*(send(t) for t in targets))
    return {"recorded": recorded, "returned": time.perf_counter() - t0, "attempts": []}


def client_main(method: str, port: int, deadline: float, mode: str, conn) -> None:  # a client process
    targets = targets_for(port)
    body = payload("bench", BroadcastSpec(message=MESSAGE, type="warning"))
    before = rss_mib("VmRSS")
    cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    if method == "seed":
        out = asyncio.run(run_seed(targets, body))
    elif mode == "profile":
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        out = prof.runcall(asyncio.run, run_ours(targets, body, Limits(deadline=deadline), trace=False))
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
        out["profile"] = text.getvalue()
    else:
        # The reconciler service runs its loop on uvloop (reconciler.service.run): so does this.
        out = run_service_loop(run_ours(targets, body, Limits(deadline=deadline), trace=mode == "trace"))
    out["cpu"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0
    out["rss_before"], out["rss_peak"] = before, rss_mib("VmHWM")
    conn.send(out)


def measure(method: str, deadline: float, mode: str = "") -> dict[str, Any]:
    """Start the simulated labs and one client process; the client's figures."""
    mp = multiprocessing.get_context("spawn")
    server_end, here = mp.Pipe()
    server = mp.Process(target=serve_labs, args=(server_end,), daemon=True)
    server.start()
    client = None
    try:
        if not here.poll(30):
            raise RuntimeError("the simulated labs did not start within 30 s")
        port = here.recv()
        client_end, from_client = mp.Pipe()
        client = mp.Process(target=client_main, args=(method, port, deadline, mode, client_end), daemon=True)
        client.start()
        if not from_client.poll(deadline + 120):
            raise RuntimeError(f"the {method} client did not finish")
        out = from_client.recv()
        server.terminate()  # SIGTERM: the app reports the CPU it spent, then shuts down
        out["server_cpu"] = here.recv() if here.poll(10) else float("nan")
        server.join(5)
        return out
    finally:
        for p in (client, server):
            if p is not None and p.is_alive():
                p.terminate()
                p.join(5)
                if p.is_alive():
                    p.kill()


def figures(out: dict[str, Any]) -> dict[str, Any]:
    rec = out["recorded"]
    answering = [t for u, t in rec.items() if u not in FROZEN]
    delivered = [t for u, (o, t) in rec.items() if u not in FROZEN and o == "delivered"]
    frozen = [rec[u] for u in sorted(FROZEN) if u in rec]
    return {
        "delivered": len(delivered),
        "last": max((t for _o, t in answering), default=float("nan")),
        "last_delivered": max(delivered, default=float("nan")),
        "p50": statistics.median(t for _o, t in answering),
        "p99": pct([t for _o, t in answering], 99),
        "frozen": Counter(o for o, _t in frozen),
        "frozen_at": (min(t for _o, t in frozen), max(t for _o, t in frozen)) if frozen else (0, 0),
        "returned": out["returned"],
        "peak": out["rss_peak"],
        "before": out["rss_before"],
        "cpu": out["cpu"],
        "server_cpu": out["server_cpu"],
        "first": min(t for _o, t in answering),
        "outcomes": Counter(o for u, (o, _t) in rec.items() if u not in FROZEN),
    }


# --- 2. real labs -------------------------------------------------------------------------------
REQUEST_LINE = re.compile(r"\b(\d{3}) (GET|POST|PUT|PATCH|DELETE) (\S+) \(reconciler@127\.0\.0\.1\)")


class LogTail:
    """Lines the hub appended to its log since the last look."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0
        self.skip()

    def skip(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def new(self) -> list[str]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return data.decode(errors="replace").splitlines()


def wall(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def real_broadcast(hub, log: LogTail, spec: dict[str, Any], expected: int) -> dict[str, Any]:
    """Submit, poll every POLL s until Completed; times and the reconciler's hub API requests."""
    time.sleep(1.0)  # quiet: no request of an earlier broadcast still on its way to the log
    log.skip()
    t_wall, t0 = time.time(), time.perf_counter()
    r = hub.api("POST", "notifications", json=spec)
    assert r.status_code == 202, r.text
    name = r.json()["name"]
    seen_all = None
    while True:
        data = hub.api("GET", f"notifications/{name}").json()
        rows = data["deliveries"]
        if seen_all is None and len(rows) == expected and all(d["outcome"] != "pending" for d in rows):
            seen_all = time.perf_counter() - t0
        if data["phase"] == "Completed":
            completed = time.perf_counter() - t0
            break
        if time.perf_counter() - t0 > 60:
            raise RuntimeError(f"broadcast {name} not Completed within 60 s: {data.get('phase')}")
        time.sleep(POLL)
    seen_all = seen_all if seen_all is not None else completed
    time.sleep(1.0)  # let the hub write its last request lines
    requests_made = Counter()
    for line in log.new():
        m = REQUEST_LINE.search(line)
        if m:
            path = re.sub(r"offset=\d+", "offset=N", m.group(3))
            requests_made[f"{m.group(2)} {path}"] += 1
        elif "(reconciler@127.0.0.1)" in line:
            requests_made["(unparsed) " + line[-80:]] += 1
    return {
        "targets": len(rows),
        "delivered": sum(d["outcome"] == "delivered" for d in rows),
        "recorded": max(wall(d["time"]) for d in rows) - t_wall if rows else float("nan"),
        "seen": seen_all,
        "completed": completed,
        "requests": requests_made,
    }


def real_labs() -> dict[str, Any]:
    import docker

    from tests.harness import Hub, cleanup_docker

    engine = docker.from_env()
    cleanup_docker(engine, PLATFORM)
    state = Path(tempfile.mkdtemp(prefix="jhds-bench-bc-"))
    hub = Hub(state_dir=state, platform=PLATFORM, extra_env={"RESYNC_SECONDS": "3600"})
    users = [f"bc{i:02d}" for i in range(REAL_LABS)]
    try:
        up = hub.up()
        assert up.returncode == 0, f"make up failed:\n{up.stdout}\n{up.stderr}"
        for user in users:
            hub.create_user(user)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(users)) as pool:
            list(pool.map(lambda u: hub.start_server(u, timeout=300), users))
        started = time.perf_counter() - t0
        log = LogTail(hub.log_path)
        runs = {
            "first": real_broadcast(hub, log, {"message": MESSAGE + " (1)"}, len(users)),
            "all": real_broadcast(hub, log, {"message": MESSAGE + " (2)"}, len(users)),
            "two": real_broadcast(hub, log, {"message": MESSAGE + " (3)", "targets": {"users": users[:2]}}, 2),
        }
    finally:
        hub.down()
        cleanup_docker(engine, PLATFORM)
        shutil.rmtree(state, ignore_errors=True)
    return {"started": started, **runs}


# --- output -------------------------------------------------------------------------------------
NUMERIC = (
    "delivered",
    "first",
    "last",
    "last_delivered",
    "p50",
    "p99",
    "peak",
    "before",
    "cpu",
    "server_cpu",
    "returned",
)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-figure medians over the runs; the frozen ones' outcomes over all runs."""
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in NUMERIC}
    out["frozen"] = sum((r["frozen"] for r in runs), Counter())
    out["frozen_at"] = (min(r["frozen_at"][0] for r in runs), max(r["frozen_at"][1] for r in runs))
    out["outcomes"] = sum((r["outcomes"] for r in runs), Counter())
    out["runs"] = runs
    return out


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def checks(run: dict[str, Any], deadline: float) -> dict[str, bool]:
    n = N_LABS - len(FROZEN)
    return {
        f"all {n} delivered and recorded within 2 s": run["delivered"] == n and run["last"] < 2,
        "p50 < 50 ms": run["p50"] < 0.05,
        "peak memory < 150 MB": run["peak"] * 2**20 < 150e6,
        "frozen: timeout at the deadline": run["frozen"] == Counter(timeout=len(FROZEN))
        and abs(run["frozen_at"][0] - deadline) < 0.5
        and abs(run["frozen_at"][1] - deadline) < 0.5,
    }


def report_simulated(ours: dict[str, Any], seed: dict[str, Any], deadline: float, trace: dict[str, Any]) -> None:
    n, repeat = N_LABS - len(FROZEN), len(ours["runs"])
    print(
        f"Delivery to {N_LABS} simulated labs on 127.0.0.1 ({n} answer, {len(FROZEN)} never do), one aiohttp app in its"
    )
    print(
        f"own process; each client in a fresh process; median of {repeat} runs; latency = run start -> outcome recorded"
    )
    print(f"  {'':42}{'ours':>12}{'seed (baseline)':>17}{'ours / seed':>13}")
    rows = [
        ("answering targets delivered", f"{ours['delivered']:.0f} / {n}", f"{seed['delivered']:.0f} / {n}", None),
        ("first answering target recorded", f"{ours['first'] * 1e3:.1f} ms", f"{seed['first'] * 1e3:.1f} ms", None),
        ("last answering target recorded", f"{ours['last']:.3f} s", f"{seed['last']:.3f} s", "last"),
        (
            "  last delivery recorded",
            f"{ours['last_delivered']:.3f} s",
            f"{seed['last_delivered']:.3f} s",
            "last_delivered",
        ),
        ("p50 per answering target", f"{ours['p50'] * 1e3:.0f} ms", f"{seed['p50'] * 1e3:.0f} ms", "p50"),
        ("p99 per answering target", f"{ours['p99'] * 1e3:.0f} ms", f"{seed['p99'] * 1e3:.0f} ms", "p99"),
        ("peak RSS of the client process (VmHWM)", f"{ours['peak']:.1f} MiB", f"{seed['peak']:.1f} MiB", "peak"),
        ("  of which before the run (imports)", f"{ours['before']:.1f} MiB", f"{seed['before']:.1f} MiB", None),
        ("client CPU time (user + sys)", f"{ours['cpu']:.2f} s", f"{seed['cpu']:.2f} s", "cpu"),
        ("simulated labs' CPU time", f"{ours['server_cpu']:.2f} s", f"{seed['server_cpu']:.2f} s", None),
        ("whole run returned after", f"{ours['returned']:.2f} s", f"{seed['returned']:.2f} s", None),
    ]
    for label, a, b, key in rows:
        r = ratio(ours[key], seed[key]) if key else ""
        print(f"  {label:42}{a:>12}{b:>17}{r:>13}")
    for who, f in (("ours", ours), ("seed", seed)):
        each = ", ".join(f"{r['delivered']}/{r['last']:.2f} s/{r['p50'] * 1e3:.0f} ms" for r in f["runs"])
        print(f"  {who} runs (delivered/last/p50): {each}")
    for who, f in (("ours", ours), ("seed", seed)):
        other = {k: v for k, v in f["outcomes"].items() if k != "delivered"}
        frozen = ", ".join(f"{c} {o}" for o, c in f["frozen"].items())
        print(
            f"  {who}, all runs: answering not delivered: {dict(other) or 'none'}; frozen: {frozen}, "
            f"recorded at {f['frozen_at'][0]:.2f}-{f['frozen_at'][1]:.2f} s"
        )
    print(
        f"  ours: Limits() defaults (concurrency 50, 5 s per attempt) but a {deadline:g} s deadline instead of 60 s;"
        " seed: AsyncHTTPClient() defaults (max_clients=10), 5 s request/connect timeouts"
    )
    attempts = trace["attempts"]
    print(
        "  ours, one more run traced (aiohttp TraceConfig), each request's own time, sent -> answered: "
        f"p50 {statistics.median(attempts) * 1e3:.1f} ms, p99 {pct(attempts, 99) * 1e3:.1f} ms"
    )
    per_run = [checks(r, deadline) for r in ours["runs"]]
    print(
        "  targets (ours): "
        + "; ".join(
            f"{k}: {'met' if all(c[k] for c in per_run) else 'MISSED'} in {sum(c[k] for c in per_run)}/{repeat} runs"
            for k in per_run[0]
        )
    )


def report_real(real: dict[str, Any]) -> None:
    print(
        f"Real labs: {REAL_LABS} servers started at once in {real['started']:.1f} s; "
        f"POST /hub/api/notifications, polled every {POLL * 1e3:.0f} ms:"
    )
    print(
        f"  {'broadcast':28}{'targets':>8}{'delivered':>10}{'last outcome':>14}{'all seen':>10}"
        f"{'Completed':>11}{'hub API requests':>18}"
    )
    labels = {"first": "to everyone (first)", "all": "to everyone", "two": "to 2 users (targets.users)"}
    for key, label in labels.items():
        r = real[key]
        print(
            f"  {label:28}{r['targets']:8d}{r['delivered']:10d}{r['recorded']:13.3f}s{r['seen']:9.3f}s"
            f"{r['completed']:10.3f}s{sum(r['requests'].values()):18d}"
        )
    for key, label in labels.items():
        tally = ", ".join(f"{c} x {p}" for p, c in sorted(real[key]["requests"].items())) or "none"
        print(f"    {label}: {tally}")
    a, b = sum(real["all"]["requests"].values()), sum(real["two"]["requests"].values())
    print(
        f"  hub API requests by the reconciler, {real['two']['targets']} -> {real['all']['targets']} targets: "
        f"{b} -> {a} ({'the same' if a == b else 'GROWS with the targets'}); last outcome: the ledger's time of "
        "the last outcome - submit"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadline", type=float, default=10.0, help="our deadline in seconds (default 10; 60 in use)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method; medians (default 3)")
    parser.add_argument("--no-labs", action="store_true", help="skip the real labs")
    parser.add_argument("--profile", action="store_true", help="also profile one of our runs (cProfile, own time)")
    args = parser.parse_args()
    t_start, load = time.perf_counter(), os.getloadavg()[0]

    ours_runs, seed_runs = [], []
    for _ in range(args.repeat):  # interleaved, so a change in the machine's load hits both
        ours_runs.append(figures(measure("ours", args.deadline)))
        seed_runs.append(figures(measure("seed", args.deadline)))
    trace = measure("ours", args.deadline, "trace")
    profile = measure("ours", args.deadline, "profile") if args.profile else None
    real = None if args.no_labs else real_labs()

    report_simulated(summarize(ours_runs), summarize(seed_runs), args.deadline, trace)
    if profile is not None:
        print(profile["profile"])
    if real is not None:
        report_real(real)
    print(
        f"benchmark runtime {time.perf_counter() - t_start:.0f} s; {os.cpu_count()} CPUs, load average "
        f"{load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
