"""The operators' Usage page: server-hours per group over time, top users, storage per user
with soft limits, each chart downloadable as CSV (docs/usage.md, "The Usage page and Grafana").

- `GET /usage`: the page (Chart.js, served by the hub from `/platform-static/`; no CDN).
- `GET /api/usage-charts?since=30d&until=&step=hour|day`: what the page draws, as JSON.
- `GET /usage/<chart>.csv?since=...`: one chart's rows (`server-hours`, `top-users`, `storage`).
- `GET /platform-static/<path>`: the platform's static files (hub_config/static/).

The page, its JSON and its CSVs need the platform's READ scope, as the other operator pages
do (admins have it); the static files are public, as JupyterHub's own are.
The figures are the ledger's (`reconciler.usage.report`); limits come from the policies in
force, combined over the user's groups as the platform combines them (the largest wins).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Collection
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jupyterhub import orm
from jupyterhub.handlers.base import BaseHandler
from sqlalchemy.orm import selectinload
from tornado import web

from reconciler.in_force import group_policies
from reconciler.quotas import combine_storage
from reconciler.usage.report import server_seconds_over_time, storage_by_user, usage_report

from .. import usage_charts as charts
from ..backends import get_store, get_usage
from .base import READ, ResourceAPIHandler

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
FORBIDDEN = "Only platform operators may see everyone's usage"


@lru_cache(maxsize=8)
def static_version(relative: str) -> str:
    """A short hash of a static file, for `?v=` (the browser caches it until it changes)."""
    return hashlib.sha256((STATIC_DIR / relative).read_bytes()).hexdigest()[:12]


def group_limits(users_groups: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Each user's storage soft limits {volume kind: bytes}, combined as the quotas combine
    them (`quotas.combine_storage`; one store read, once per set of groups)."""
    in_force = group_policies(get_store())
    by_groups: dict[tuple[str, ...], dict[str, int]] = {}
    out = {}
    for user, groups in users_groups.items():
        key = tuple(sorted(groups))
        if key not in by_groups:
            by_groups[key] = {kind: limit.bytes for kind, limit in combine_storage(key, in_force).items()}
        out[user] = by_groups[key]
    return out


def read_ledger(rng: charts.Range, wanted: Collection[str]) -> dict[str, Any]:
    """The ledger's reads for the charts `wanted` (of `charts.CHARTS`), in one session (the
    ledger's handle has made its tables): a CSV download reads its own chart's rows only."""
    out: dict[str, Any] = {}
    with get_usage().store.session() as s:
        if "server-hours" in wanted:
            out["server-hours"] = server_seconds_over_time(
                s, by="group", since=rng.since, until=rng.until, step=rng.step
            )
        if "top-users" in wanted:
            out["top-users"] = usage_report(s, by="user", since=rng.since, until=rng.until)
        if "storage" in wanted:
            out["storage"] = storage_by_user(s)
    return out


def memberships(handler: BaseHandler, names: Collection[str]) -> dict[str, list[str]]:
    """The hub's own record of these users' groups (read on the hub's thread: its session
    belongs to it), in two queries, not one a user."""
    if not names:
        return {}
    query = handler.db.query(orm.User).options(selectinload(orm.User.groups))
    return {u.name: [g.name for g in u.groups] for u in query.filter(orm.User.name.in_(list(names))).all()}


async def usage_data(handler: BaseHandler, wanted: Collection[str] = charts.CHARTS) -> dict[str, Any]:
    """The page's JSON for the request's range (?since, ?until, ?step), with the charts
    `wanted` only; a 400 names a bad range."""
    try:
        rng = charts.parse_range(
            handler.get_argument("since", None),
            handler.get_argument("until", None),
            handler.get_argument("step", None),
            datetime.now(UTC),
        )
    except charts.RangeError as e:
        raise web.HTTPError(400, "%s", str(e)) from None
    read = await asyncio.to_thread(read_ledger, rng, wanted)
    out: dict[str, Any] = {"since": rng.since.isoformat(), "until": rng.until.isoformat(), "step": rng.step}
    if "server-hours" in read:
        out["serverHours"] = charts.server_hours_series(read["server-hours"])
    if "top-users" in read:
        out |= {"users": charts.user_rows(read["top-users"]), "topUsers": charts.TOP_USERS}
    if "storage" in read:
        volumes = read["storage"]
        limits = await asyncio.to_thread(group_limits, memberships(handler, {v["user"] for v in volumes}))
        out |= {"storage": charts.storage_rows(volumes, limits), "topVolumes": charts.TOP_VOLUMES}
    return out


class UsageChartsAPIHandler(ResourceAPIHandler):
    """GET /hub/api/usage-charts: what the Usage page draws."""

    async def get(self) -> None:
        self.require(READ)
        self.send(await usage_data(self))


class UsageCSVHandler(BaseHandler):
    """GET /hub/usage/<chart>.csv: one chart's rows, as a download."""

    @web.authenticated
    async def get(self, chart: str) -> None:
        if READ not in self.expanded_scopes:
            raise web.HTTPError(403, FORBIDDEN)
        data = await usage_data(self, (chart,))
        day = data["until"][:10]
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="usage-{chart}-{day}.csv"')
        self.set_header("Cache-Control", "no-store")
        self.finish(charts.chart_csv(chart, data))


class UsagePageHandler(BaseHandler):
    """GET /hub/usage: the charts; their data come from /hub/api/usage-charts."""

    @web.authenticated
    async def get(self) -> None:
        if READ not in self.expanded_scopes:
            raise web.HTTPError(403, FORBIDDEN)
        html = await self.render_template(
            "usage.html",
            chart_js_version=static_version("vendor/chart.js/chart.umd.min.js"),
            usage_js_version=static_version("usage.js"),
        )
        self.finish(html)


class PlatformStaticHandler(web.StaticFileHandler):
    """The platform's own static files (the vendored Chart.js, the pages' scripts). Versioned
    URLs (`?v=`) are cached for long; tornado keeps requests inside STATIC_DIR."""

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")  # a script only as what it is


handlers = [
    (r"/usage", UsagePageHandler),
    (r"/api/usage-charts", UsageChartsAPIHandler),
    (r"/usage/(server-hours|top-users|storage)\.csv", UsageCSVHandler),
    (r"/platform-static/(.*)", PlatformStaticHandler, {"path": str(STATIC_DIR)}),
]
