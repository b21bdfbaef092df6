"""What the reconciler needs of the Docker proxy of `limited` access (`docker_proxy/`, built
beside this): the interface its controller codes against (so unit tests give a fake; the records are the
proxy's own `OwnedObject` and `AuditEvent`), and
the sink of the proxy's audit events, which become events on `DockerAccess/<user>`.

The proxy runs on a thread and event loop of its own; it calls `AuditSink` there. The sink
bounds what it records per user and minute (`DOCKER_AUDIT_EVENTS_PER_MINUTE`), so a user
looping on a refused call cannot flood the event table, and hands the writes to a worker
thread: the proxy's loop never waits for the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vocabulary import naming

from .docker_objects import OwnedObject
from .docker_proxy import AuditEvent
from .docker_requests import Quota
from .store import Store

log = logging.getLogger("reconciler.dockeraccess")
KIND = naming.DOCKER_ACCESS_KIND
PENDING_MAX = 1000  # audit events waiting for the database, over all users


class DockerProxyPort(Protocol):
    """The proxy as the DockerAccess controller uses it (`docker_proxy.DockerProxy`)."""

    async def open(self, user: str, quota: Quota) -> Path: ...

    async def close(self, user: str) -> None: ...

    def open_users(self) -> dict[str, Quota]: ...

    async def owned(self, user: str) -> Sequence[OwnedObject]: ...

    async def forget(self, user: str, ids: Iterable[str]) -> None: ...


REASONS = {"create": "Created", "remove": "Removed", "refused": "Refused"}


@dataclass
class AuditSink:
    """The proxy's `on_audit`: thread-safe, never blocks its caller on the database."""

    store: Store
    per_minute: int = 60
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _windows: dict[str, tuple[float, int, int]] = field(default_factory=dict, repr=False)  # start, kept, dropped
    _pending: deque[tuple[str, str, str, str]] = field(default_factory=deque, repr=False)
    _writer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "docker-audit"), repr=False)
    _draining: bool = False

    def __call__(self, user: str, event: AuditEvent) -> Awaitable[None] | None:
        what = " ".join(p for p in (event.endpoint, event.object) if p)
        message = f"{what}: {event.message}".strip(": ")
        self.add(user, REASONS.get(event.kind, "Audit"), message, "Warning" if event.kind == "refused" else "Normal")
        return None

    def add(self, user: str, reason: str, message: str, type: str = "Normal", now: float | None = None) -> bool:
        """Queue one event for `user`; False when over the minute's bound (counted, said once
        the next minute begins)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            start, kept, dropped = self._windows.get(user, (now, 0, 0))
            if now - start >= 60:
                if dropped:
                    note = f"{dropped} audit events not recorded in the minute before (over {self.per_minute} a minute)"
                    self._queue(user, "AuditSuppressed", note, "Warning")
                start, kept, dropped = now, 0, 0
            if kept >= self.per_minute or len(self._pending) >= PENDING_MAX:
                self._windows[user] = (start, kept, dropped + 1)
                return False
            self._windows[user] = (start, kept + 1, dropped)
            self._queue(user, reason, message, type)
            return True

    def _queue(self, user: str, reason: str, message: str, type: str) -> None:
        self._pending.append((user, reason, message[:1000], type))
        if not self._draining:
            self._draining = True
            self._writer.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._draining = False
                    return
                user, reason, message, type = self._pending.popleft()
            try:
                self.store.add_event(KIND, user, reason, message, type)
            except Exception:  # the database away: this event is lost, the proxy goes on
                log.exception("docker audit: could not record %s of %s", reason, user)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until the queued events are written (tests; shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending and not self._draining:
                    return
            time.sleep(0.01)

    def close(self) -> None:
        self.flush()
        self._writer.shutdown(wait=False)
