"""What the Usage page draws and downloads (hub_config/usage_charts.py): the range, the series,
the CSVs, and the soft limits read from whatever shape the policies' `storage` has."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from hub_config import usage_charts as charts
from reconciler.usage.report import UsageRow as Row

NOW = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
GIB = 1024**3


def test_default_range_is_the_last_30_days_by_the_day() -> None:
    r = charts.parse_range(None, None, None, NOW)
    assert (r.since, r.until, r.step) == (NOW - timedelta(days=30), NOW, "day")


def test_short_ranges_are_hourly_and_ranges_read_as_hubctl_reads_them() -> None:
    assert charts.parse_range("1d", None, None, NOW).step == "hour"
    # A DATE since is that day's midnight; a DATE until includes that day (the ledger's window).
    r = charts.parse_range("2026-11-01", "2026-11-07", None, NOW)
    assert r.since == datetime(2026, 11, 1, tzinfo=UTC) and r.until == datetime(2026, 11, 8, tzinfo=UTC)
    assert r.step == "hour"
    assert charts.parse_range("2026-11-01T06:00:00", None, "day", NOW).since == datetime(2026, 11, 1, 6, tzinfo=UTC)
    # A duration counts back from until.
    assert charts.parse_range("2d", "2026-11-07", None, NOW).since == datetime(2026, 11, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "step", "says"),
    [
        ("yesterday", None, None, "a date or time"),
        ("2026-11-09", "2026-11-07", None, "must be before"),
        ("1d", "2d", None, "until must be a date"),
        ("800d", None, None, "at most 731 days"),
        ("30d", None, "hour", "hourly bars"),
        ("7d", None, "minute", "hour or day"),
    ],
)
def test_bad_ranges_say_what_is_accepted(since: str, until: str | None, step: str | None, says: str) -> None:
    with pytest.raises(charts.RangeError, match=says):
        charts.parse_range(since, until, step, NOW)


def test_server_hours_series_fills_every_group_and_orders_by_total() -> None:
    points = [{"t": "2026-12-01T00:00:00+00:00", "a": 3600}, {"t": "2026-12-02T00:00:00+00:00", "b": 36000, "a": 1800}]
    series = charts.server_hours_series(points)
    assert series["groups"] == ["b", "a"]
    assert series["points"] == [
        {"t": "2026-12-01T00:00:00+00:00", "b": 0.0, "a": 1.0},
        {"t": "2026-12-02T00:00:00+00:00", "b": 10.0, "a": 0.5},
    ]
    assert charts.server_hours_series([]) == {"groups": [], "points": []}


def test_user_rows_in_hours_most_server_time_first() -> None:
    rows = charts.user_rows([Row("ann", ["x"], 3600, 1800, 0.5, 0, 10), Row("bob", ["x", "y"], 7200, 0, 0, 36, 0)])
    assert [r["user"] for r in rows] == ["bob", "ann"]
    assert rows[1] == {
        "user": "ann",
        "groups": ["x"],
        "serverHours": 1.0,
        "cpuHours": 0.5,
        "memoryGiBHours": 0.5,
        "gpuHours": 0.0,
        "storageBytes": 10,
    }


def test_storage_rows_carry_limits_and_percent_largest_first() -> None:
    volumes = [
        {"user": "ann", "volume": "jhds-ann-home", "kind": "home", "bytes": GIB, "surveyed": "t"},
        {"user": "bob", "volume": "jhds-bob-home", "kind": "home", "bytes": 3 * GIB, "surveyed": "t"},
    ]
    rows = charts.storage_rows(volumes, {"bob": {"home": 2 * GIB}})
    assert [(r["user"], r["softLimit"], r["percent"]) for r in rows] == [("bob", 2 * GIB, 150.0), ("ann", None, None)]


def data() -> dict:
    return {
        "serverHours": charts.server_hours_series([{"t": "2026-12-01T00:00:00+00:00", "g1": 7200, "g,2": 3600}]),
        "users": charts.user_rows([Row("=cmd", ["g1", "g,2"], 3600, 0, 0, 0, 5)]),
        "storage": charts.storage_rows(
            [{"user": "ann", "volume": "v", "kind": "home", "bytes": 5, "surveyed": "2026-12-07T08:00:00+00:00"}], {}
        ),
    }


def parsed(text: str) -> list[list[str]]:
    assert text.endswith("\r\n")
    return list(csv.reader(io.StringIO(text)))


def test_each_chart_as_csv_header_and_rows() -> None:
    assert parsed(charts.chart_csv("server-hours", data())) == [
        ["time", "g1", "g,2"],
        ["2026-12-01T00:00:00+00:00", "2.0", "1.0"],
    ]
    top = parsed(charts.chart_csv("top-users", data()))
    assert top[0] == ["user", "groups", "serverHours", "cpuHours", "memoryGiBHours", "gpuHours", "storageBytes"]
    assert top[1][:3] == ["'=cmd", "g1 g,2", "1.0"]  # a formula-like cell is not run by a spreadsheet
    assert parsed(charts.chart_csv("storage", data())) == [
        ["user", "volume", "kind", "bytes", "softLimit", "percent", "surveyed"],
        ["ann", "v", "home", "5", "", "", "2026-12-07T08:00:00+00:00"],
    ]
    with pytest.raises(KeyError):
        charts.chart_csv("other", data())
