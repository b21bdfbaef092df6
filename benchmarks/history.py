"""History benchmark (no hub): what finished work costs the reconciler and the database.

a. Resync cost with many finished one-shots. Store A holds 200 standing resources
   (GroupMemberships with a status); store B the same 200 plus 20,000 finished VolumeResets
   (status Succeeded, marked finished by `Store.mark_finished` with the default
   `ttlSecondsAfterFinished` of 7 days, so none is expired). Timed: `Store.live_keys()`, the
   resync's key list, on A and on B (median of several runs), and the rows it returns.
   Baseline, same run: the previous resync's way on B, `Store.keys()` and `Store.get()` of
   every key (each finished one-shot loaded to find it has nothing to do).
b. Rows in the database after 1,000 servers x 60 cron firings of one Broadcast. Each run
   goes through the delivery ledger as the controller does it (`Deliveries.start_run` with
   1,000 targets, `Deliveries.record` of the outcomes, `Deliveries.counts`), two events
   (`Store.add_event`), then the controller's history rule (`keep_history`, then
   `Deliveries.forget_runs` of the runs it dropped; one run in ten has a timed-out target,
   so the failed-run limit is exercised too) and the housekeeping trims
   (`Store.trim_events`, `Deliveries.trim`) with the default settings. Baseline, same run:
   the same 60 runs with no retention.

Everything is in temporary SQLite files, removed at the end.

    .venv/bin/python benchmarks/history.py [--standing 200] [--finished 20000] [--servers 1000] [--runs 60]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler import jobs
from reconciler.api import parse_resource
from reconciler.api.broadcast import BroadcastRun, BroadcastSpec, BroadcastStatus
from reconciler.api.groupmembership import GroupMembershipStatus
from reconciler.api.volumereset import VolumeResetSpec, VolumeResetStatus
from reconciler.broadcast_runs import keep_history
from reconciler.clients.lab import Result, Target
from reconciler.deliveries import Deliveries, DeliveryRow
from reconciler.store import Store
from reconciler.tables import EventRow, ResourceRow
from vocabulary.settings import load_settings

API = "jupyterhub-ds/v1"
BROADCAST = "hourly-notice"
FAILED_EVERY = 10  # one run in this many has a target that timed out (outcome Failed)
OLD_REPEAT = 3  # runs of the old way (seconds each), median


def doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec}


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of `repeat` calls, and the last call's value."""
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def count(store: Store, table: type) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(table))


# --- a. resync cost with many finished one-shots ----------------------------------------------
def add_standing(store: Store, n: int) -> None:
    now = datetime.now(UTC)
    docs = [
        doc("GroupMembership", f"team-{i:03d}", {"group": f"team-{i:03d}", "members": ["ann", "bob"]}) for i in range(n)
    ]
    store.apply([parse_resource(d) for d in docs], "api")
    for i in range(n):
        status = GroupMembershipStatus(
            phase="Ready", observed_generation=1, group=f"team-{i:03d}", members=["ann", "bob"]
        )
        status.set_condition("Ready", "True", "InSync", "2 members", now)
        store.write_status("GroupMembership", f"team-{i:03d}", status.dump())


def add_finished(store: Store, n: int, batch: int = 2000) -> None:
    """`n` VolumeResets as the loop leaves them: status Succeeded, marked finished (TTL 7 days)."""
    for start in range(0, n, batch):
        docs = [
            doc("VolumeReset", f"reset-{i:05d}", {"user": f"u{i % 1000:04d}", "volumes": ["cache"]})
            for i in range(start, min(n, start + batch))
        ]
        store.apply([parse_resource(d) for d in docs], "api")
        for d in docs:
            name, user, now = d["metadata"]["name"], d["spec"]["user"], datetime.now(UTC)
            status = VolumeResetStatus(
                phase="Succeeded", observed_generation=1, user=user, reset_volumes=[f"jupyterlab-{user}_cache"]
            )
            status.finished_at = now
            status.set_condition("Ready", "True", "Reset", "1 volume reset", now)
            store.write_status("VolumeReset", name, status.dump())
            spec = VolumeResetSpec.model_validate(d["spec"])
            store.mark_finished("VolumeReset", name, now, jobs.ttl_expiry(spec, now))


def old_resync(store: Store) -> int:
    """The previous resync's cost: every key listed, and every resource loaded."""
    listed = store.keys()
    return sum(store.get(kind, name) is not None for kind, name in listed)


def resync_cost(tmp: Path, standing: int, finished: int, repeat: int) -> dict[str, Any]:
    a = Store(f"sqlite:///{tmp / 'a.sqlite'}")
    b = Store(f"sqlite:///{tmp / 'b.sqlite'}")
    add_standing(a, standing)
    add_standing(b, standing)
    t0 = time.perf_counter()
    add_finished(b, finished)
    build = time.perf_counter() - t0
    a.live_keys(), b.live_keys()  # warm: connection pool, statement cache
    out: dict[str, Any] = {"build": build}
    out["a"], keys_a = timed(a.live_keys, repeat)
    out["b"], keys_b = timed(b.live_keys, repeat)
    out["old"], loaded = timed(lambda: old_resync(b), OLD_REPEAT)
    out["rows_a"], out["rows_b"], out["loaded"] = len(keys_a), len(keys_b), loaded
    out["total_b"] = count(b, ResourceRow)
    with b.engine.connect() as c:
        query = select(ResourceRow.kind, ResourceRow.name).where(
            ResourceRow.finished.is_(None) | (ResourceRow.expires <= datetime.now(UTC))
        )
        sql = str(query.compile(c, compile_kwargs={"literal_binds": True}))
        out["plan"] = [row[-1] for row in c.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    a.close()
    b.close()
    return out


# --- b. rows after 1,000 servers x 60 cron firings ----------------------------------------
def outcomes(targets: list[Target], failed_run: bool) -> list[Result]:
    results = [Result(t, "delivered", http_status=200, attempts=1, ms=12) for t in targets]
    if failed_run:
        results[-1] = Result(targets[-1], "timeout", error="no answer within the deadline", attempts=3, ms=60000)
    return results


def cron_history(tmp: Path, file: str, servers: int, runs: int, retention: bool) -> dict[str, Any]:
    store = Store(f"sqlite:///{tmp / file}")
    ledger = Deliveries(store)
    settings = load_settings({})  # the defaults
    spec_doc = {"message": "Hourly backup starts in 5 minutes", "schedule": {"cron": "0 * * * *"}}
    store.apply([parse_resource(doc("Broadcast", BROADCAST, spec_doc))], "api")
    spec = BroadcastSpec.model_validate(spec_doc)
    status = BroadcastStatus(phase="Scheduled", observed_generation=1)
    targets = [Target(f"u{i:04d}", "", f"http://127.0.0.1:8000/user/u{i:04d}/ingest", "t") for i in range(servers)]
    first = datetime(2026, 12, 1, tzinfo=UTC)
    trimmed = {"events": 0, "deliveries": 0}
    t0 = time.perf_counter()
    for k in range(runs):
        due = first + timedelta(hours=k)
        run_id = due.strftime("%Y%m%dT%H%M%S.%fZ")
        ledger.start_run(BROADCAST, run_id, [(t.user, t.server, t.url) for t in targets])
        store.add_event("Broadcast", BROADCAST, "Delivering", f"run {run_id}: {servers} running server(s)")
        ledger.record(BROADCAST, run_id, outcomes(targets, failed_run=k % FAILED_EVERY == FAILED_EVERY - 1))
        counts = ledger.counts(BROADCAST, run_id)
        ok = counts["delivered"] == counts["total"]
        run = BroadcastRun(
            id=run_id,
            outcome="Succeeded" if ok else "Failed",
            scheduled_for=due,
            started_at=due,
            finished_at=due + timedelta(seconds=1),
            total=counts["total"],
            counts=counts,
        )
        store.add_event("Broadcast", BROADCAST, "Delivered", f"run {run_id}: {counts['delivered']}/{counts['total']}")
        all_runs = [run, *status.runs]
        if retention:  # the controller's rule (finish_run), then housekeeping
            status.runs = keep_history(spec, all_runs)
            dropped = [r.id for r in all_runs if r not in status.runs]
            if dropped:
                ledger.forget_runs(BROADCAST, dropped)
            trimmed["events"] += store.trim_events(settings.events_max_age_days, settings.events_max_rows)
            trimmed["deliveries"] += ledger.trim(settings.deliveries_max_age_days, settings.deliveries_max_rows)
        else:
            status.runs = all_runs
        status.counts, status.last_scheduled = counts, due
        store.write_status("Broadcast", BROADCAST, status.dump())
    seconds = time.perf_counter() - t0
    out = {
        "seconds": seconds,
        "deliveries": count(store, DeliveryRow),
        "events": count(store, EventRow),
        "runs_kept": len(status.runs),
        "outcomes_kept": [r.outcome for r in status.runs],
        "trimmed": trimmed,
        "settings": settings,
    }
    store.close()
    out["mib"] = sum(p.stat().st_size for p in tmp.glob(file + "*")) / 2**20
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--standing", type=int, default=200, help="standing resources in both stores (default 200)")
    parser.add_argument("--finished", type=int, default=20000, help="finished one-shots in store B (default 20000)")
    parser.add_argument("--repeat", type=int, default=21, help="runs of live_keys, median (default 21)")
    parser.add_argument("--servers", type=int, default=1000, help="targets per broadcast run (default 1000)")
    parser.add_argument("--runs", type=int, default=60, help="cron firings (default 60)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="jhds-bench-hist-"))
    try:
        a = resync_cost(tmp, args.standing, args.finished, args.repeat)
        kept = cron_history(tmp, "kept.sqlite", args.servers, args.runs, retention=True)
        unkept = cron_history(tmp, "unkept.sqlite", args.servers, args.runs, retention=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    n_a, n_b = args.standing, args.standing + args.finished
    print(f"a. resync key list, {args.standing} standing resources (A) vs + {args.finished:,} finished one-shots (B):")
    print(f"  (B built in {a['build']:.1f} s: apply, write_status and mark_finished of every one-shot, TTL 7 days)")
    rows_a, rows_b = f"A, {n_a:,} rows", f"B, {n_b:,} rows"
    print(f"  live_keys() on {rows_a:<16} {a['a'] * 1000:9.2f} ms, {a['rows_a']:,} keys (median of {args.repeat})")
    print(f"  live_keys() on {rows_b:<16} {a['b'] * 1000:9.2f} ms, {a['rows_b']:,} keys (median of {args.repeat})")
    print(
        f"  old way on B, keys() + get() of every key (baseline): {a['old'] * 1000:.1f} ms, "
        f"{a['loaded']:,} resources loaded (median of {OLD_REPEAT})"
    )
    print(f"  ratio B / A (live_keys): {a['b'] / a['a']:6.2f}x   (goal <= 1.2)")
    print(f"  ratio old / new on B:    {a['old'] / a['b']:6.0f}x")
    print(f"  query plan of live_keys on B: {'; '.join(a['plan'])}")

    s = kept["settings"]
    print(f"b. rows after {args.servers:,} servers x {args.runs} cron firings of one Broadcast:")
    print(
        f"  retention: successfulRunsHistoryLimit 3, failedRunsHistoryLimit 1 (defaults); "
        f"EVENTS_MAX_ROWS {s.events_max_rows:,}, EVENTS_MAX_AGE_DAYS {s.events_max_age_days:g}, "
        f"DELIVERIES_MAX_ROWS {s.deliveries_max_rows:,}, DELIVERIES_MAX_AGE_DAYS {s.deliveries_max_age_days:g}"
    )
    print("                         jhds_deliveries  jhds_events  runs in status  database  simulated in")
    for label, r in (("with retention", kept), ("without (baseline)", unkept)):
        print(
            f"  {label:<21} {r['deliveries']:15,d}  {r['events']:11,d}  {r['runs_kept']:14d}"
            f"  {r['mib']:6.1f} MiB  {r['seconds']:9.1f} s"
        )
    print(f"  runs kept: {', '.join(str(o) for o in kept['outcomes_kept'])}")
    print(
        f"  rows deleted by the trims (defaults): {kept['trimmed']['events']} events, "
        f"{kept['trimmed']['deliveries']} delivery records (the history limits did the work)"
    )
    print(f"  ratio with / without retention (delivery rows): {kept['deliveries'] / unkept['deliveries']:6.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
