"""What the usage and quota endpoints accept (docs/usage.md, "Who reads a user's figures"):
who may read a user's usage and quota, a report's window and grouping, an operator's grant.
Pure: the handlers (`handlers/usage.py`, `handlers/quota.py`) call these and answer with
the HTTPError they raise, so every 400 and 403 is tested without a hub
(tests/unit/test_usage_requests.py)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from tornado import web

from reconciler.quotas import KINDS, QuotaKind
from reconciler.usage.report import By
from reconciler.usage.window import parse_window
from vocabulary.scopes import READ

MAX_GRANT_HOURS = 10_000.0


def reader_scope(name: str) -> str:
    """JupyterHub's scope to read the user `name`: a user holds it for themself (`self`), and
    `admin:users`, `users`, `read:users` and their `!group=` forms of the user's groups
    include it. The lab's server token (`users:activity`, `access:servers`) does not: the
    lab never reads these figures (the Quota watch pushes its notices to the lab)."""
    return f"read:users!user={name}"


def require_reader(name: str, authenticated: bool, holds: Callable[[str], bool]) -> None:
    """403 unless the requester may read `name`'s usage and quota: a holder of
    `reader_scope(name)` or of the platform's read scope (operators). `holds` says whether
    the request's token has a scope (JupyterHub's `has_scope`, group filters included)."""
    if not authenticated:
        raise web.HTTPError(403, "Missing or invalid credentials.")
    if not (holds(READ) or holds(reader_scope(name))):
        raise web.HTTPError(403, f"Not allowed to read the usage of {name} (needs {reader_scope(name)} or {READ})")


def window(since: str | None, until: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """A report's [since, until) from `?since=&until=`; 400 saying which bound is wrong."""
    try:
        return parse_window(since, until, now)
    except ValueError as e:
        raise web.HTTPError(400, "%s", str(e)) from None


def grouping(by: str) -> By:
    if by == "user" or by == "group":
        return by
    raise web.HTTPError(400, "by must be user or group")


def grant_request(body: Mapping[str, Any]) -> tuple[float, QuotaKind]:
    """The hours and kind of a grant (`{"hours": 20, "kind": "server"}`); 400 saying what is wrong."""
    hours, kind = body.get("hours"), body.get("kind", "server")
    if not isinstance(hours, int | float) or isinstance(hours, bool) or not math.isfinite(hours):
        raise web.HTTPError(400, 'Give the hours as a number: {"hours": 20, "kind": "server"}')
    if not 0 < hours <= MAX_GRANT_HOURS:
        raise web.HTTPError(400, f"hours must be above 0 and at most {MAX_GRANT_HOURS:g} (got {hours})")
    if kind not in KINDS:
        raise web.HTTPError(400, f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    return float(hours), kind
