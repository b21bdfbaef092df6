"""Quotas and storage soft limits as users and operators see them (docs/usage.md#quotas).

- `GET /api/users/<name>/quota`: the user's quota against their use in the window, the
  thresholds crossed, whether a start is refused and when it frees up, their grants, and
  their volumes against the soft limits (the home page shows it). The user themself, whoever
  manages their servers, or the platform's read scope.
- `POST /api/users/<name>/quota-grants {"hours": 20, "kind": "server"}`: a one-off extension
  of the current window's limit (`hubctl quota grant`), recorded as an event on
  `Quota/<name>`; scope `custom:jupyterhub-ds:write:requests` (operators).
- `GET /api/quotas`: every user the Quota watch follows, as it last saw them (`hubctl get quotas`).
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any

from tornado import web

from reconciler.api.quota import QuotaStatus
from reconciler.quotas import KINDS, QUOTA_KIND, Grant
from vocabulary.scopes import READ, WRITE_REQUESTS
from vocabulary.settings import get_settings

from .. import quota_check
from ..backends import get_store
from .base import ResourceAPIHandler

MAX_GRANT_HOURS = 10_000.0
# The Quota watch's stored figures are served while younger than this many of its periods
# (QUOTA_CHECK_SECONDS); older, the reconciler is down or behind and they are computed anew.
FRESH_LOOKS = 3


class QuotaHandler(ResourceAPIHandler):
    async def get(self, name: str) -> None:
        user = self.user_whose_servers(name, "see the quota", operators_too=True)
        groups = [g.name for g in user.groups]
        fresh_for = FRESH_LOOKS * get_settings().quota_check_seconds
        answer = await asyncio.to_thread(quota_check.figures, get_store(), name, groups, datetime.now(UTC), fresh_for)
        self.send(answer)


class QuotaGrantsHandler(ResourceAPIHandler):
    async def post(self, name: str) -> None:
        self.require(WRITE_REQUESTS)
        user = self.find_user(name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {name}")
        body = self.json_object()
        hours, kind = body.get("hours"), body.get("kind", "server")
        if not isinstance(hours, int | float) or isinstance(hours, bool) or not math.isfinite(hours):
            raise web.HTTPError(400, 'Give the hours as a number: {"hours": 20, "kind": "server"}')
        if not 0 < hours <= MAX_GRANT_HOURS:
            raise web.HTTPError(400, f"hours must be above 0 and at most {MAX_GRANT_HOURS:g} (got {hours})")
        if kind not in KINDS:
            raise web.HTTPError(400, f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
        now, store = datetime.now(UTC), get_store()
        grant = Grant(now, kind, float(hours), self.actor)
        await asyncio.to_thread(quota_check.record_grant, store, name, grant, self.actor)
        groups = [g.name for g in user.groups]
        answer = await asyncio.to_thread(quota_check.view, store, name, groups, now)
        self.send(answer | {"granted": grant.as_dict()}, 201)


def overview() -> list[dict[str, Any]]:
    rows = []
    for name, body in sorted(get_store().observed_all(QUOTA_KIND).items()):
        status = QuotaStatus.load(body)
        if status.quota is None and not status.storage:
            continue
        rows.append({"user": name, **status.dump()})
    return rows


class QuotasHandler(ResourceAPIHandler):
    async def get(self) -> None:
        self.require(READ)
        self.send({"users": await asyncio.to_thread(overview)})


handlers = [
    (r"/api/users/([^/]+)/quota", QuotaHandler),
    (r"/api/users/([^/]+)/quota-grants", QuotaGrantsHandler),
    (r"/api/quotas", QuotasHandler),
]
