"""Sampling the running servers: one listing of the engine's running containers, then one
`GET /containers/<id>/stats?stream=false&one-shot=true` per platform server (Engine API
1.41: one read of the cgroup counters, not the two reads a second apart a plain `stream=false`
waits for), a bounded number at once, the whole round bounded by a deadline.

Which containers are servers, and whose, comes from what the platform recorded when it made
them (the spawner's `OwnedObject` records), never from labels. The engine is spoken to over
its Unix socket with aiohttp: the calls are few, small and concurrent, and need no thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from .rollups import Sample, cpu_delta, sample_interval

STATS_PATH = "/containers/{id}/stats?stream=false&one-shot=true"


class StatsClient:
    """The Engine API calls the sampler makes, over the engine's Unix socket."""

    def __init__(self, socket_path: str, timeout: float = 10.0, version: str = "v1.41"):
        self.socket_path = socket_path
        self.timeout = timeout
        self.prefix = f"http://engine/{version}"
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.socket_path, limit=64),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _get(self, path: str) -> Any:
        async with self._session().get(self.prefix + path) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            return await response.json(content_type=None)

    async def running(self) -> list[dict[str, Any]]:
        return await self._get('/containers/json?filters={"status":["running"]}') or []

    async def stats(self, container_id: str) -> dict[str, Any] | None:
        return await self._get(STATS_PATH.format(id=container_id))


def measure(stats: Mapping[str, Any]) -> tuple[float, int]:
    """(cumulative CPU seconds, memory in use in bytes) from one stats answer. Memory as
    `docker stats` shows it: usage less the inactive page cache (cgroup v2 `inactive_file`,
    v1 `total_inactive_file`)."""
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = detail.get("inactive_file", detail.get("total_inactive_file", 0)) or 0
    usage = memory.get("usage") or 0
    return cpu / 1e9, max(int(usage) - int(cache), 0)


@dataclass
class Round:
    """What one round did (the watch's status and the benchmark read it)."""

    samples: list[Sample] = field(default_factory=list)
    engine_calls: int = 0
    errors: int = 0
    timed_out: int = 0
    seconds: float = 0.0


@dataclass
class Sampler:
    """Keeps each container's previous counter between rounds (the watch keeps them in its
    status too, so a restarted reconciler resumes where the last round left them)."""

    client: StatsClient
    nominal: float  # USAGE_SAMPLE_SECONDS
    concurrency: int = 8
    previous: dict[str, tuple[datetime, float]] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def round(self, owned: Mapping[str, Mapping[str, Any]], deadline: float) -> Round:
        """Sample every running container the platform recorded as a lab (`owned`: id ->
        record with `user`, `server`, `role`); at most `deadline` seconds in all."""
        t0 = time.perf_counter()
        result = Round()
        listed = await asyncio.wait_for(self.client.running(), deadline)
        result.engine_calls += 1
        labs = [c for c in listed if (owned.get(c.get("Id", "")) or {}).get("role") == "lab"]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(c: Mapping[str, Any]) -> Sample | None:
            async with gate:
                try:
                    stats = await self.client.stats(c["Id"])
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    result.errors += 1
                    return None
                finally:
                    result.engine_calls += 1
            if not stats:
                return None  # gone since the listing
            return self._sample(c, owned[c["Id"]], stats)

        tasks = [asyncio.create_task(one(c)) for c in labs]
        remaining = max(0.0, deadline - (time.perf_counter() - t0))
        done, pending = await asyncio.wait(tasks, timeout=remaining) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        result.timed_out = len(pending)
        result.samples = [s for task in done if (s := task.result()) is not None]
        live = {c["Id"] for c in listed}
        for gone in set(self.previous) - live:
            del self.previous[gone]
        result.seconds = time.perf_counter() - t0
        return result

    def _sample(self, c: Mapping[str, Any], record: Mapping[str, Any], stats: Mapping[str, Any]) -> Sample:
        now = self.clock()
        total, memory = measure(stats)
        before = self.previous.get(c["Id"])
        created = c.get("Created")
        started = datetime.fromtimestamp(created, UTC) if isinstance(created, int | float) else None
        interval = sample_interval(before[0] if before else None, now, self.nominal, started)
        self.previous[c["Id"]] = (now, total)
        return Sample(
            time=now,
            user=str(record.get("user", "")),
            server=str(record.get("server", "")),
            container=c["Id"],
            cpu_total=total,
            cpu_seconds=cpu_delta(before[1] if before else None, total),
            memory_bytes=memory,
            interval=interval,
            gpus=int(record.get("gpus", 0) or 0),
        )
