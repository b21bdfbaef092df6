"""The delivery core: POST one notification to many lab ingest endpoints, bounded and fair.

A plain async function with explicit inputs (idle-culler style), so it is measured and
tested without the rest of the reconciler. Every target gets its own retry loop under one
shared deadline; a semaphore bounds the requests in flight, so a few frozen servers hold
only their own slots and everyone else is delivered at full speed.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

Outcome = Literal["delivered", "failed", "timeout", "skipped"]

FINAL_MESSAGES = {
    404: "notifications extension not installed on this server",
    401: "authentication failed",
    403: "authentication failed",
}


@dataclass(frozen=True)
class Target:
    user: str
    server: str  # "" for the default server
    url: str  # the ingest endpoint, from the server's own base URL
    token: str = field(repr=False)


@dataclass
class Result:
    target: Target
    outcome: Outcome
    http_status: int | None = None
    error: str = ""
    attempts: int = 0
    ms: int = 0


@dataclass(frozen=True)
class Limits:
    concurrency: int = 50
    attempt_timeout: float = 5.0
    deadline: float = 60.0
    backoff_base: float = 0.25
    backoff_cap: float = 5.0


def _lab_error(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)
    return str(body)[:200]


@dataclass
class _Job:
    result: Result
    started: float
    headers: dict[str, str]


async def attempt(session: aiohttp.ClientSession, job: _Job, body: bytes, timeout: float) -> tuple[bool, Outcome]:
    """One POST. Returns (final, outcome); fills the job's result; never raises."""
    result = job.result
    result.attempts += 1
    try:
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with session.post(result.target.url, data=body, headers=job.headers, timeout=client_timeout) as r:
            result.http_status = r.status
            if r.status == 200:
                result.error = ""
                return True, "delivered"
            try:
                answer: Any = await r.json(content_type=None)
            except ValueError:
                answer = await r.text()
            if r.status in FINAL_MESSAGES:
                result.error = FINAL_MESSAGES[r.status]
                return True, "failed"
            if r.status < 500:  # 400 and other client errors: the lab said no, for good
                result.error = f"rejected by the server: {_lab_error(answer)}"
                return True, "failed"
            result.error = f"server error {r.status}: {_lab_error(answer)}"
            return False, "failed"
    except TimeoutError:
        result.error = f"no answer within {timeout:g} s"
        return False, "timeout"
    except aiohttp.ClientError as e:
        result.error = f"cannot connect: {e}"
        return False, "failed"


async def deliver_all(
    targets: list[Target],
    payload: dict[str, Any],
    on_result: Callable[[Result], Awaitable[None]] | None = None,
    limits: Limits = Limits(),
    session: aiohttp.ClientSession | None = None,
) -> list[Result]:
    """Deliver to every target; `on_result` is awaited as each one finishes.

    `limits.concurrency` workers take targets from one queue (first attempts before
    retries); a retry goes back in the queue after its backoff, never past the deadline.
    """
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    deadline = start + limits.deadline
    rng = random.Random()
    body = json.dumps(payload).encode()  # once, not per target
    queue: asyncio.PriorityQueue[tuple[int, int, _Job]] = asyncio.PriorityQueue()
    jobs = [
        _Job(Result(t, "timeout"), start, {"Authorization": f"token {t.token}", "Content-Type": "application/json"})
        for t in targets
    ]
    for seq, job in enumerate(jobs):
        queue.put_nowait((0, seq, job))
    remaining = len(jobs)
    all_done = asyncio.Event()
    own = session is None
    if session is None:
        connector = aiohttp.TCPConnector(limit=limits.concurrency, limit_per_host=0, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def finish(job: _Job, outcome: Outcome) -> None:
        nonlocal remaining
        job.result.outcome = outcome
        job.result.ms = int((time.monotonic() - job.started) * 1000)
        if on_result is not None:
            await on_result(job.result)
        remaining -= 1
        if remaining == 0:
            all_done.set()

    async def worker() -> None:
        while True:
            _, seq, job = await queue.get()
            left = deadline - time.monotonic()
            if left <= 0:
                await finish(job, job.result.outcome)
                continue
            final, outcome = await attempt(session, job, body, min(limits.attempt_timeout, left))
            if final:
                await finish(job, outcome)
                continue
            job.result.outcome = outcome
            ceiling = min(limits.backoff_cap, limits.backoff_base * 2 ** (job.result.attempts - 1))
            pause = ceiling / 2 + rng.random() * ceiling / 2
            if time.monotonic() + pause >= deadline:
                await finish(job, outcome)
            else:  # back in the queue after the pause, behind every first attempt
                loop.call_later(pause, queue.put_nowait, (1, seq, job))

    workers = [asyncio.create_task(worker()) for _ in range(min(limits.concurrency, len(jobs)))]
    try:
        if jobs:
            await all_done.wait()
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if own:
            await session.close()
    return [job.result for job in jobs]
