"""The client of JupyterLab's notification endpoint (DESIGN §5): its URL, its payload, and
the delivery core that POSTs one notification to many labs, bounded and fair.

`deliver_all` is a plain async function with explicit inputs (idle-culler style), so it is
measured and tested without the rest of the reconciler. Every target gets its own retry loop under one
shared deadline; a semaphore bounds the requests in flight, so a few frozen servers hold
only their own slots and everyone else is delivered at full speed.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from ..queue import jittered_delay

INGEST = "jupyterlab-notifications-extension/ingest"
# A user controls their lab, so its replies are untrusted: read a bounded prefix, keep a
# short, printable excerpt (it is stored, shown and logged).
REPLY_READ_BYTES = 4096
ERROR_KEEP_CHARS = 200
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]+")

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


def ingest_url(proxy_url: str, server_url: str) -> str:
    """A lab's ingest endpoint, through the proxy, from the server's own base URL (as the
    hub reports it, e.g. `/user/alice/` or `/jupyterhub/user/alice/gpu/`)."""
    return proxy_url + server_url.rstrip("/") + "/" + INGEST


def payload(message: str, type: str, auto_close: int | bool, dismiss_button: bool, data: Any) -> dict[str, Any]:
    """The ingest body: shown at once in open tabs (`immediate`), with a Dismiss action if asked."""
    actions = (
        [{"label": "Dismiss", "caption": "Dismiss this notification", "displayType": "default"}]
        if dismiss_button
        else []
    )
    return {
        "message": message,
        "type": type,
        "autoClose": auto_close,
        "actions": actions,
        "data": data,
        "immediate": True,
    }


def clean_text(text: str, limit: int = ERROR_KEEP_CHARS) -> str:
    """Printable, one line, at most `limit` characters: safe to store, show and log. Control,
    format (bidi, zero-width, BOM, soft hyphen, tags) and line/paragraph separators go."""
    text = _UNPRINTABLE.sub(" ", text[: REPLY_READ_BYTES * 2])
    text = "".join(ch if unicodedata.category(ch) not in _INVISIBLE else " " for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lab_error(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        return clean_text(text)
    if isinstance(body, dict):
        return clean_text(str(body.get("error") or body.get("message") or body))
    return clean_text(str(body))


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
        async with session.post(
            result.target.url, data=body, headers=job.headers, timeout=client_timeout, allow_redirects=False
        ) as r:
            result.http_status = r.status
            if r.status == 200:
                result.error = ""
                return True, "delivered"
            answer = await r.content.read(REPLY_READ_BYTES)
            if r.status in FINAL_MESSAGES:
                result.error = FINAL_MESSAGES[r.status]
                return True, "failed"
            if r.status < 500:  # 400 and other client errors: the lab said no, for good
                result.error = clean_text(f"rejected by the server: {_lab_error(answer)}")
                return True, "failed"
            result.error = clean_text(f"server error {r.status}: {_lab_error(answer)}")
            return False, "failed"
    except TimeoutError:
        result.error = f"no answer within {timeout:g} s"
        return False, "timeout"
    except aiohttp.ClientError as e:
        result.error = clean_text(f"cannot connect: {e}")
        return False, "failed"


async def _try(
    session: aiohttp.ClientSession, job: _Job, body: bytes, limits: Limits, deadline: float, rng: random.Random
) -> tuple[Outcome, float | None]:
    """One turn of a target: its outcome, and the pause before its retry (None: it is final)."""
    left = deadline - time.monotonic()
    if left <= 0:
        return job.result.outcome, None
    final, outcome = await attempt(session, job, body, min(limits.attempt_timeout, left))
    if final:
        return outcome, None
    pause = jittered_delay(job.result.attempts - 1, limits.backoff_base, limits.backoff_cap, rng)
    return outcome, (None if time.monotonic() + pause >= deadline else pause)


def new_session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


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
    session = session or new_session(limits.concurrency)

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
            outcome, pause = await _try(session, job, body, limits, deadline, rng)
            if pause is None:
                await finish(job, outcome)
            else:  # back in the queue after the pause, behind every first attempt
                job.result.outcome = outcome
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
