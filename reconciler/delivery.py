"""The delivery core: POST one notification to many lab ingest endpoints, bounded and fair.

A plain async function with explicit inputs (idle-culler style), so it is measured and
tested without the rest of the reconciler. Every target gets its own retry loop under one
shared deadline; a semaphore bounds the requests in flight, so a few frozen servers hold
only their own slots and everyone else is delivered at full speed.
"""

from __future__ import annotations

import asyncio
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


async def deliver_one(
    session: aiohttp.ClientSession,
    target: Target,
    payload: dict[str, Any],
    limits: Limits,
    gate: asyncio.Semaphore,
    deadline: float,
    rng: random.Random,
) -> Result:
    """Try until delivered, a final answer, or the deadline; never raises."""
    t0 = time.monotonic()
    result = Result(target, "timeout")
    headers = {"Authorization": f"token {target.token}"}
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        result.attempts += 1
        timeout = aiohttp.ClientTimeout(total=min(limits.attempt_timeout, left))
        retry_outcome: Outcome = "failed"
        try:
            async with gate, session.post(target.url, json=payload, headers=headers, timeout=timeout) as r:
                result.http_status = r.status
                if r.status == 200:
                    result.outcome, result.error = "delivered", ""
                    break
                try:
                    body = await r.json(content_type=None)
                except ValueError:
                    body = await r.text()
                if r.status in FINAL_MESSAGES:
                    result.outcome, result.error = "failed", FINAL_MESSAGES[r.status]
                    break
                if r.status < 500:  # 400 and other client errors: the lab said no, for good
                    result.outcome, result.error = "failed", f"rejected by the server: {_lab_error(body)}"
                    break
                result.error = f"server error {r.status}: {_lab_error(body)}"
        except TimeoutError:
            retry_outcome = "timeout"
            result.error = f"no answer within {timeout.total:g} s"
        except aiohttp.ClientError as e:
            result.error = f"cannot connect: {e}"
        result.outcome = retry_outcome
        # Retry with jittered exponential backoff, but never past the deadline.
        ceiling = min(limits.backoff_cap, limits.backoff_base * 2 ** (result.attempts - 1))
        pause = ceiling / 2 + rng.random() * ceiling / 2
        if time.monotonic() + pause >= deadline:
            break
        await asyncio.sleep(pause)
    result.ms = int((time.monotonic() - t0) * 1000)
    return result


async def deliver_all(
    targets: list[Target],
    payload: dict[str, Any],
    on_result: Callable[[Result], Awaitable[None]] | None = None,
    limits: Limits = Limits(),
    session: aiohttp.ClientSession | None = None,
) -> list[Result]:
    """Deliver to every target; `on_result` is awaited as each one finishes."""
    deadline = time.monotonic() + limits.deadline
    gate = asyncio.Semaphore(limits.concurrency)
    rng = random.Random()
    own = session is None
    if session is None:
        connector = aiohttp.TCPConnector(limit=limits.concurrency, limit_per_host=0, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector)
    try:

        async def one(target: Target) -> Result:
            result = await deliver_one(session, target, payload, limits, gate, deadline, rng)
            if on_result is not None:
                await on_result(result)
            return result

        return list(await asyncio.gather(*(one(t) for t in targets)))
    finally:
        if own:
            await session.close()
