"""The limited Docker proxy (issue 25, docs/docker-access.md): a Unix socket per user with
`limited` access, between their lab and the real engine. Each request is judged by the
policy (`docker_requests.decide`) with a view of the engine whose owners come from the
proxy's own records; the engine gets the request the policy rewrote, never the client's
bytes; what the user makes is recorded by id (`docker_objects`), and what they make,
remove or are refused goes to `on_audit`.

Modules: `proxy` (the thread, its loop, the shared interface), `server` (one user's
socket, each request judged), `forward` (to the engine and back: whole, streamed or
hijacked), `view` (owners from the records, references resolved by the engine), `after`
(records, narrowed lists, audit), `ledger` (the records in memory), `engine` and `http1`
(the wire).
"""

from __future__ import annotations

from ..docker_objects import OwnedObject
from .after import AuditEvent
from .proxy import DockerProxy, OnAudit

__all__ = ["AuditEvent", "DockerProxy", "OnAudit", "OwnedObject"]
