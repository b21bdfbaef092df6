"""The sampler's rounds against a fake engine (pure logic): only containers the platform
recorded as labs are sampled, CPU-seconds follow the counter across rounds and a restart,
a slow engine call is cut at the round's deadline, and the CPU-seconds of a synthetic trace
come within one sample interval per server of the truth."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.usage.sampler import Sampler, measure
from reconciler.usage.storage import user_volumes

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class FakeEngine:
    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Any]] = {}  # id -> {"cpu": seconds, "mem": bytes}
        self.slow: set[str] = set()

    async def running(self) -> list[dict[str, Any]]:
        return [{"Id": cid, "Created": T0.timestamp(), "Labels": {}} for cid in self.containers]

    async def stats(self, cid: str) -> dict[str, Any] | None:
        if cid in self.slow:
            await asyncio.sleep(10)
        c = self.containers.get(cid)
        if c is None:
            return None
        return {
            "cpu_stats": {"cpu_usage": {"total_usage": int(c["cpu"] * 1e9)}},
            "memory_stats": {"usage": c["mem"] + 100, "stats": {"inactive_file": 100}},
        }


def sampler(engine: FakeEngine, clock: list[datetime]) -> Sampler:
    return Sampler(engine, 60.0, 4, clock=lambda: clock[0])  # type: ignore[arg-type]


def test_measure_reads_cgroup_v1_and_v2() -> None:
    v2 = {
        "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}},
        "memory_stats": {"usage": 900, "stats": {"inactive_file": 100}},
    }
    v1 = {
        "cpu_stats": {"cpu_usage": {"total_usage": 0}},
        "memory_stats": {"usage": 900, "stats": {"total_inactive_file": 300}},
    }
    assert measure(v2) == (2.5, 800)
    assert measure(v1) == (0.0, 600)
    assert measure({}) == (0.0, 0)


def test_only_recorded_labs_are_sampled_and_deltas_follow_the_counter() -> None:
    engine = FakeEngine()
    engine.containers = {
        "lab1": {"cpu": 10.0, "mem": 1000},
        "copycat": {"cpu": 99.0, "mem": 1},
        "helper": {"cpu": 1.0, "mem": 1},
    }
    owned = {"lab1": {"role": "lab", "user": "alice", "server": ""}, "helper": {"role": "helper"}}
    clock = [T0 + timedelta(seconds=30)]
    s = sampler(engine, clock)
    r = asyncio.run(s.round(owned, deadline=5))
    (x,) = r.samples
    assert (x.user, x.server, x.cpu_seconds, x.memory_bytes, x.interval) == ("alice", "", 10.0, 1000, 30.0)
    assert r.engine_calls == 2  # one listing, one stats call
    clock[0] += timedelta(seconds=60)
    engine.containers["lab1"]["cpu"] = 25.0
    (x,) = asyncio.run(s.round(owned, deadline=5)).samples
    assert (x.cpu_seconds, x.interval) == (15.0, 60.0)
    clock[0] += timedelta(seconds=60)
    engine.containers["lab1"]["cpu"] = 4.0  # restarted: the counter began again
    (x,) = asyncio.run(s.round(owned, deadline=5)).samples
    assert x.cpu_seconds == 4.0


def test_a_slow_call_is_cut_at_the_deadline() -> None:
    engine = FakeEngine()
    engine.containers = {"a": {"cpu": 1.0, "mem": 1}, "b": {"cpu": 1.0, "mem": 1}}
    engine.slow = {"b"}
    owned = {cid: {"role": "lab", "user": cid} for cid in engine.containers}
    r = asyncio.run(sampler(engine, [T0]).round(owned, deadline=0.3))
    assert [x.user for x in r.samples] == ["a"] and r.timed_out == 1 and r.seconds < 1


def test_a_restarted_reconciler_resumes_from_the_last_sample() -> None:
    engine = FakeEngine()
    engine.containers = {"lab1": {"cpu": 50.0, "mem": 1}}
    clock = [T0 + timedelta(hours=1)]
    s = sampler(engine, clock)
    s.previous = {"lab1": (T0 + timedelta(minutes=59), 45.0)}  # from the watch's status
    (x,) = asyncio.run(s.round({"lab1": {"role": "lab", "user": "a"}}, deadline=5)).samples
    assert (x.cpu_seconds, x.interval) == (5.0, 60.0)


def test_cpu_seconds_of_a_synthetic_trace_within_one_interval_per_server() -> None:
    """Three servers burning 0.25, 1 and 1.5 cores, started and stopped between samples: the
    sampled CPU-seconds miss at most the CPU of one interval per server (the tail after the
    last sample before the stop)."""
    engine = FakeEngine()
    rates = {"a": 0.25, "b": 1.0, "c": 1.5}
    spans = {"a": (0, 3600), "b": (125, 1900), "c": (10, 601)}  # seconds after T0
    owned = {cid: {"role": "lab", "user": cid} for cid in rates}
    clock = [T0]
    s = sampler(engine, clock)
    got = {cid: 0.0 for cid in rates}
    for t in range(0, 3700, 60):
        clock[0] = T0 + timedelta(seconds=t)
        engine.containers = {
            cid: {"cpu": rates[cid] * (t - spans[cid][0]), "mem": 1}
            for cid in rates
            if spans[cid][0] <= t < spans[cid][1]
        }
        for x in asyncio.run(s.round(owned, deadline=5)).samples:
            got[x.user] += x.cpu_seconds
    for cid, rate in rates.items():
        truth = rate * (spans[cid][1] - spans[cid][0])
        assert truth - rate * 60 <= got[cid] <= truth, (cid, got[cid], truth)


def test_storage_counts_only_the_platforms_user_volumes() -> None:
    sizes = {"jhds-alice-home": 10, "jhds-alice-work": None, "jhds-bob-home": 5, "alice-home-copy": 99, "other": 1}
    rows = user_volumes(sizes, ["alice", "bob", "carol"], "jhds-{username}-{volume}", ["home", "work"])
    assert rows == [("jhds-alice-home", "alice", "home", 10), ("jhds-bob-home", "bob", "home", 5)]
