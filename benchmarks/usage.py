"""Usage-ledger benchmark (no hub; issue 26's targets).

a. The report. A temporary SQLite ledger holds 30 days of 1,000 users, each in one of 20
   groups (every tenth also in `staff`), each running one server 8 h a day (from 08:00 plus
   up to 59 minutes): the sessions, the hourly and daily roll-ups the sampler would have
   written at 60 s, the raw samples of the last USAGE_RAW_DAYS (7) days (3.36 M rows), two
   user volumes' sizes per user per day. Timed (median of 3): `usage_report(by="group")`
   over the last 30 days and its JSON document, what `GET /hub/api/usage?by=group` (so
   `hubctl usage --by group -o json`) does. Baseline, same run: the CPU and memory part of
   the same report summed from the raw rows instead of the roll-ups, over the 7 days that
   exist, scaled to 30 days (x 30/7: raw rows are read linearly). The ledger's size: the
   database file after a checkpoint. Target: under 2 s, under 200 MB.
b. Sampling. A simulated engine in its own process (an aiohttp server on a Unix socket
   answering `GET /v1.41/containers/json` and `GET /v1.41/containers/<id>/stats` with the
   shapes Docker 20.10 gives, cgroup v2) runs 100 containers, recorded as labs. Timed: the
   reconciler's CPU time (this process, `time.process_time`) for N rounds of the sampler
   (one listing, 100 one-shot stats calls, 8 at a time) each followed by recording the
   samples and their roll-ups in the ledger; the average cost is that per round over
   USAGE_SAMPLE_SECONDS (60). Baseline, same run: the same rounds through docker-py (the
   engine client the reconciler's other watches use: one call after the other, in a
   thread), with the same recording. Target: under 1 % of one core.

    .venv/bin/python benchmarks/usage.py [--users 1000] [--days 30] [--servers 100] [--rounds 20] [--part a|b|all]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.store import Store
from reconciler.usage.ledger import UsageLedger
from reconciler.usage.report import report_json, usage_report
from reconciler.usage.rollups import GIB, Sample, cpu_delta
from reconciler.usage.sampler import Sampler, StatsClient
from reconciler.usage.tables import DailyRow, HourlyRow, SampleRow, SessionRow, StorageRow

HOURS_A_DAY = 8
SAMPLE_SECONDS = 60
RAW_DAYS = 7
CHUNK = 50_000


def groups_of(i: int) -> list[str]:
    return sorted({f"group-{i % 20:02d}"} | ({"staff"} if i % 10 == 0 else set()))


def fill(store: Store, users: int, days: int, now: datetime) -> dict[str, int]:
    """Write the ledger a month of sampling would have left (see the module)."""
    rng = random.Random(26)
    sessions, hourly, daily, storage, raw = [], [], [], [], 0
    sid = 0
    with store.engine.begin() as c:
        for d in range(days, 0, -1):
            day = (now - timedelta(days=d)).replace(hour=0, minute=0, second=0, microsecond=0)
            for i in range(users):
                user = f"user{i:04d}"
                groups = groups_of(i)
                g = json.dumps(groups)
                start = day + timedelta(hours=8, minutes=i % 60)
                stop = start + timedelta(hours=HOURS_A_DAY)
                sid += 1
                sessions.append(
                    {
                        "id": sid,
                        "user": user,
                        "server": "",
                        "started": start,
                        "stopped": stop,
                        "groups": groups,
                        "last_seen": stop,
                        "opened_by": "hub",
                        "closed_by": "hub",
                    }
                )
                cores, mem = rng.uniform(0.05, 1.5), rng.uniform(0.3, 4.0)
                t, day_cpu, day_mem = start, 0.0, 0.0
                while t < stop:
                    hour_end = min(t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1), stop)
                    seconds = (hour_end - t).total_seconds()
                    hourly.append(
                        {
                            "user": user,
                            "server": "",
                            "period": t.replace(minute=0, second=0, microsecond=0),
                            "groups": g,
                            "cpu_seconds": cores * seconds,
                            "memory_gib_hours": mem * seconds / 3600,
                            "gpu_seconds": 0.0,
                            "samples": int(seconds // SAMPLE_SECONDS),
                        }
                    )
                    day_cpu += cores * seconds
                    day_mem += mem * seconds / 3600
                    t = hour_end
                daily.append(
                    {
                        "user": user,
                        "server": "",
                        "period": day.date(),
                        "groups": g,
                        "cpu_seconds": day_cpu,
                        "memory_gib_hours": day_mem,
                        "gpu_seconds": 0.0,
                        "samples": HOURS_A_DAY * 60,
                    }
                )
                for kind, size in (("home", rng.randint(1, 5) * 2**30), ("workspace", rng.randint(0, 20) * 2**28)):
                    storage.append(
                        {
                            "volume": f"jupyterlab-{user}_{kind}",
                            "day": day.date(),
                            "user": user,
                            "kind": kind,
                            "bytes": size,
                            "surveyed": day + timedelta(hours=23),
                        }
                    )
                if d <= RAW_DAYS:
                    first = int(start.timestamp())
                    rows = [
                        {
                            "time": first + k * SAMPLE_SECONDS,
                            "session": sid,
                            "cpu_ms": round(cores * SAMPLE_SECONDS * 1000),
                            "memory_kib": int(mem * GIB // 1024),
                            "interval_ms": SAMPLE_SECONDS * 1000,
                            "gpus": 0,
                        }
                        for k in range(1, HOURS_A_DAY * 3600 // SAMPLE_SECONDS + 1)
                    ]
                    c.execute(insert(SampleRow), rows)
                    raw += len(rows)
                if len(hourly) > CHUNK:
                    c.execute(insert(HourlyRow), hourly)
                    hourly = []
        for table, rows in ((SessionRow, sessions), (HourlyRow, hourly), (DailyRow, daily), (StorageRow, storage)):
            for k in range(0, len(rows), CHUNK):
                c.execute(insert(table), rows[k : k + CHUNK])
    with store.session() as s:
        counts = {
            t.__tablename__: s.scalar(select(func.count()).select_from(t))
            for t in (SessionRow, SampleRow, HourlyRow, DailyRow, StorageRow)
        }
    return counts


def raw_report(store: Store, since: datetime, until: datetime) -> dict[str, tuple[float, float]]:
    """The baseline: CPU and memory per group summed from the raw samples."""
    q = text(
        "SELECT s.groups, SUM(r.cpu_ms) / 1000.0, SUM(r.memory_kib * r.interval_ms) "
        "FROM jhds_usage_samples r JOIN jhds_usage_sessions s ON s.id = r.session "
        "WHERE r.time >= :a AND r.time < :b GROUP BY s.groups"
    )
    out: dict[str, tuple[float, float]] = {}
    with store.session() as s:
        for groups, cpu, mem in s.execute(q, {"a": int(since.timestamp()), "b": int(until.timestamp())}):
            for g in json.loads(groups):
                c0, m0 = out.get(g, (0.0, 0.0))
                out[g] = (c0 + cpu, m0 + mem / 1024**2 / 3_600_000)
    return out


def median_seconds(fn: Any, repeat: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench_report(users: int, days: int, folder: Path) -> None:
    path = folder / "ledger.sqlite"
    store = Store(f"sqlite:///{path}")
    UsageLedger(store)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    t0 = time.perf_counter()
    counts = fill(store, users, days, now)
    filled = time.perf_counter() - t0
    with store.engine.connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    since, until = now - timedelta(days=days), now

    def report() -> str:
        with store.session() as s:
            rows = usage_report(s, by="group", since=since, until=until)
        return json.dumps(report_json(rows, by="group", since=since, until=until))

    seconds, doc = median_seconds(report)
    rows = json.loads(doc)["rows"]
    raw_days = min(RAW_DAYS, days)
    base, _ = median_seconds(lambda: raw_report(store, now - timedelta(days=raw_days), now))
    base_scaled = base * days / raw_days
    expected = users * days * HOURS_A_DAY * 3600
    total = sum(r["serverSeconds"] for r in rows if r["group"] != "staff")
    print(f"a. report: {users} users x {days} days, {HOURS_A_DAY} h a day each (filled in {filled:.1f} s)")
    print("   rows: " + ", ".join(f"{k.removeprefix('jhds_usage_')} {v:,}" for k, v in counts.items()))
    print(f"   ledger size: {size / 2**20:.1f} MB (target < 200 MB)")
    print(
        f"   {days}-day report by group, JSON ({len(rows)} groups, {len(doc):,} bytes): "
        f"{seconds * 1000:.0f} ms (target < 2 s)"
    )
    print(f"   server-seconds: {total:,.0f} (exact: {expected:,})")
    print(
        f"   baseline, CPU and memory from raw rows: {base * 1000:.0f} ms for {raw_days} days, "
        f"{base_scaled * 1000:.0f} ms scaled to {days}; ratio {base_scaled / seconds:.1f}x"
    )
    store.close()


# --- b. sampling against a simulated engine ----------------------------------------------


def container_json(i: int, cid: str) -> dict[str, Any]:
    return {
        "Id": cid,
        "Names": [f"/jupyterlab-user{i:04d}"],
        "Image": "jupyterhub-ds/lab:minimal",
        "ImageID": "sha256:" + "ab" * 32,
        "Command": "tini -g -- start-singleuser.sh",
        "Created": 1796000000 + i,
        "Ports": [],
        "Labels": {"io.jupyterhub-ds.platform": "bench", "io.jupyterhub-ds.user": f"user{i:04d}"},
        "State": "running",
        "Status": "Up 2 hours",
        "HostConfig": {"NetworkMode": "host"},
        "NetworkSettings": {"Networks": {"host": {"NetworkID": "n" * 64, "IPAddress": ""}}},
        "Mounts": [{"Type": "volume", "Name": f"jupyterlab-user{i:04d}_home", "Destination": "/home", "RW": True}],
    }


def stats_json(cid: str, i: int, calls: int) -> dict[str, Any]:
    cpu = (i + 1) * 1_000_000 * calls
    return {
        "read": "2026-12-07T08:00:00.000000000Z",
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {"current": 12, "limit": 4096},
        "blkio_stats": {"io_service_bytes_recursive": []},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {"total_usage": cpu, "usage_in_kernelmode": cpu // 4, "usage_in_usermode": cpu // 2},
            "system_cpu_usage": 10**15,
            "online_cpus": 2,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {
            "usage": 300_000_000 + i,
            "limit": 8 * 2**30,
            "stats": {
                "active_anon": 200_000_000,
                "active_file": 10_000_000,
                "anon": 250_000_000,
                "file": 40_000_000,
                "inactive_anon": 0,
                "inactive_file": 30_000_000,
                "kernel_stack": 300_000,
                "pgfault": 100_000,
                "shmem": 0,
                "sock": 0,
            },
        },
        "name": f"/jupyterlab-user{i:04d}",
        "id": cid,
        "networks": {
            "eth0": {
                "rx_bytes": 1000,
                "rx_packets": 10,
                "rx_errors": 0,
                "rx_dropped": 0,
                "tx_bytes": 1000,
                "tx_packets": 10,
                "tx_errors": 0,
                "tx_dropped": 0,
            }
        },
    }


def serve_engine(socket_path: str, ids: list[str]) -> None:
    from aiohttp import web

    calls = {cid: 0 for cid in ids}

    async def listing(_request: web.Request) -> web.Response:
        return web.json_response([container_json(i, cid) for i, cid in enumerate(ids)])

    async def stats(request: web.Request) -> web.Response:
        cid = request.match_info["id"]
        if cid not in calls:
            return web.json_response({"message": f"No such container: {cid}"}, status=404)
        calls[cid] += 1
        return web.json_response(stats_json(cid, ids.index(cid), calls[cid]))

    app = web.Application()
    app.router.add_get("/{version}/containers/json", listing)
    app.router.add_get("/{version}/containers/{id}/stats", stats)
    web.run_app(app, path=socket_path, print=None, handle_signals=True)


def bench_sampling(servers: int, rounds: int, folder: Path) -> None:
    import docker

    socket_path = str(folder / "engine.sock")
    ids = [(f"{i:04d}" + "c" * 64)[:64] for i in range(servers)]
    engine = multiprocessing.Process(target=serve_engine, args=(socket_path, ids), daemon=True)
    engine.start()
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(socket_path):
            assert time.monotonic() < deadline, "the simulated engine did not start"
            time.sleep(0.05)
        owned = {cid: {"role": "lab", "user": f"user{i:04d}", "server": ""} for i, cid in enumerate(ids)}
        store = Store(f"sqlite:///{folder / 'sampling.sqlite'}")
        ledger = UsageLedger(store)
        start = datetime.now(UTC) - timedelta(hours=1)
        for i in range(servers):
            ledger.open_session(f"user{i:04d}", "", start, groups_of(i))

        async def ours() -> tuple[float, int]:
            sampler = Sampler(StatsClient(socket_path), SAMPLE_SECONDS, 8)
            calls = 0
            await sampler.round(owned, deadline=30)  # warm: connections open
            cpu0 = time.process_time()
            for _ in range(rounds):
                r = await sampler.round(owned, deadline=30)
                await asyncio.to_thread(ledger.record_samples, r.samples)
                calls += r.engine_calls
                assert len(r.samples) == servers, r
            cpu = time.process_time() - cpu0
            await sampler.client.close()
            return cpu, calls

        def baseline() -> float:
            client = docker.APIClient(base_url=f"unix://{socket_path}", version="1.41")
            previous: dict[str, float] = {}

            def one_round() -> list[Sample]:
                now = datetime.now(UTC)
                samples = []
                for c in client.containers(filters={"status": "running"}):
                    if c["Id"] not in owned:
                        continue
                    st = client.stats(c["Id"], stream=False, one_shot=True)
                    total = st["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
                    mem = st["memory_stats"]["usage"] - st["memory_stats"]["stats"]["inactive_file"]
                    rec = owned[c["Id"]]
                    samples.append(
                        Sample(now, rec["user"], "", c["Id"], total, cpu_delta(previous.get(c["Id"]), total), mem, 60.0)
                    )
                    previous[c["Id"]] = total
                return samples

            one_round()
            cpu0 = time.process_time()
            for _ in range(rounds):
                ledger.record_samples(one_round())
            cpu = time.process_time() - cpu0
            client.close()
            return cpu

        cpu, calls = asyncio.run(ours())
        base = baseline()
        per_round, base_round = cpu / rounds, base / rounds
        print(
            f"b. sampling {servers} servers against a simulated engine (Unix socket, API 1.41 shapes), {rounds} rounds"
        )
        print(
            f"   per round: {per_round * 1000:.1f} ms CPU ({calls // rounds} engine calls; "
            "samples and roll-ups recorded)"
        )
        print(
            f"   average cost at USAGE_SAMPLE_SECONDS={SAMPLE_SECONDS}: "
            f"{per_round / SAMPLE_SECONDS * 100:.3f} % of one core (target < 1 %)"
        )
        print(
            f"   baseline, docker-py one call after another: {base_round * 1000:.1f} ms CPU per round "
            f"({base_round / SAMPLE_SECONDS * 100:.3f} %); ratio {base_round / per_round:.2f}x"
        )
        store.close()
    finally:
        engine.terminate()
        engine.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--part", choices=["a", "b", "all"], default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jhds-usage-bench-") as tmp:
        if args.part in ("a", "all"):
            bench_report(args.users, args.days, Path(tmp))
        if args.part in ("b", "all"):
            bench_sampling(args.servers, args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
