"""What the operators' Usage page draws, from the ledger's report rows: the time range asked
for, the charts' series, each chart as CSV, and each volume's soft limit.

Pure: the handlers (`hub_config/handlers/usage_page.py`) read the ledger and the policies and
pass their rows here, so every shape the page and the CSV downloads see is tested without
a hub (tests/unit/test_usage_charts.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from reconciler.usage.window import parse_window

Step = Literal["hour", "day"]
# The ledger keeps daily roll-ups for USAGE_DAILY_DAYS (730 by default): no range is longer.
# Hourly bars up to two weeks (336 bars); longer ranges are drawn by the day.
HOURLY_UP_TO = timedelta(days=14)
TOP_USERS = 20  # bars in the top-users chart; its CSV has everyone
TOP_VOLUMES = 30  # bars in the storage chart; its CSV and table have every volume
HOUR = 3600.0
CHARTS = ("server-hours", "top-users", "storage")


class RangeError(ValueError):
    """A since/until the page cannot use; the message says what is accepted."""


@dataclass(frozen=True)
class Range:
    since: datetime
    until: datetime
    step: Step


def parse_range(since: str | None, until: str | None, step: str | None, now: datetime) -> Range:
    """The range asked for, as `hubctl usage` and `GET /hub/api/usage` read it (the ledger's
    `parse_window`: default the last 30 days; a DATE `until` includes that day; at most
    `MAX_WINDOW`),
    with its bar width."""
    try:
        start, end = parse_window(since or None, until or None, now)
    except ValueError as e:
        raise RangeError(str(e)) from None
    if step not in (None, "", "hour", "day"):
        raise RangeError(f"step must be hour or day; got {step!r}")
    chosen: Step = step or ("hour" if end - start <= HOURLY_UP_TO else "day")  # type: ignore[assignment]
    if chosen == "hour" and end - start > HOURLY_UP_TO:
        raise RangeError(f"hourly bars for at most {HOURLY_UP_TO.days} days; use step=day")
    return Range(start, end, chosen)


def server_hours_series(points: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`server_seconds_over_time` points ({"t": iso, "<group>": seconds}) as hours per group,
    every group in every point (0 where it had none), groups by total, largest first."""
    points = list(points)
    totals: dict[str, float] = {}
    for p in points:
        for key, value in p.items():
            if key != "t":
                totals[key] = totals.get(key, 0.0) + float(value or 0)
    groups = sorted(totals, key=lambda g: (-totals[g], g))
    rows = [{"t": p["t"], **{g: round(float(p.get(g) or 0) / HOUR, 4) for g in groups}} for p in points]
    return {"groups": groups, "points": rows}


def user_rows(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """`usage_report(by="user")` rows in hours, the most server time first."""
    out = [
        {
            "user": r.key,
            "groups": list(r.groups),
            "serverHours": round(r.server_seconds / HOUR, 4),
            "cpuHours": round(r.cpu_seconds / HOUR, 4),
            "memoryGiBHours": round(r.memory_gib_hours, 4),
            "gpuHours": round(r.gpu_seconds / HOUR, 4),
            "storageBytes": int(r.storage_bytes),
        }
        for r in rows
    ]
    return sorted(out, key=lambda r: (-r["serverHours"], r["user"]))


def storage_rows(volumes: Iterable[Mapping[str, Any]], limits: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """`storage_by_user` rows with each volume's soft limit (None: none applies), largest first.
    `limits`: user -> their combined {volume kind: bytes} (`reconciler.quotas.combine_storage`)."""
    out = []
    for v in volumes:
        limit = limits.get(v["user"], {}).get(v.get("kind") or "")
        percent = round(100 * v["bytes"] / limit, 1) if limit else None
        out.append(dict(v) | {"softLimit": limit, "percent": percent})
    return sorted(out, key=lambda r: (-int(r["bytes"] or 0), r["user"], r.get("volume") or ""))


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([_cell(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])
    return buf.getvalue()


def chart_csv(chart: str, data: Mapping[str, Any]) -> str:
    """One chart of the page's JSON (`data`) as CSV: what the chart shows, every row."""
    if chart == "server-hours":
        series = data["serverHours"]
        groups = series["groups"]
        return to_csv(["time", *groups], ([p["t"], *(p[g] for g in groups)] for p in series["points"]))
    if chart == "top-users":
        fields = ["user", "groups", "serverHours", "cpuHours", "memoryGiBHours", "gpuHours", "storageBytes"]
        return to_csv(
            fields, ([" ".join(r["groups"]) if f == "groups" else r[f] for f in fields] for r in data["users"])
        )
    if chart == "storage":
        fields = ["user", "volume", "kind", "bytes", "softLimit", "percent", "surveyed"]
        return to_csv(fields, ([r.get(f) for f in fields] for r in data["storage"]))
    raise KeyError(chart)
