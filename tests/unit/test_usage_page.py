"""The Usage page's reads: a CSV download reads its own chart's rows only (the page reads
all three). The ledger's queries are stood in for here; their figures are tested in
test_usage_report.py, the page's shapes in test_usage_charts.py."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from types import SimpleNamespace
from typing import Any

import pytest

from hub_config import usage_charts as charts
from hub_config.handlers import usage_page
from reconciler.usage.report import UsageRow


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    done: list[str] = []

    def record(name: str, answer: Any) -> Any:
        def read(*args: Any, **kwargs: Any) -> Any:
            done.append(name)
            return answer

        return read

    ledger = SimpleNamespace(store=SimpleNamespace(session=nullcontext))
    monkeypatch.setattr(usage_page, "get_usage", lambda: ledger)
    monkeypatch.setattr(usage_page, "server_seconds_over_time", record("server-hours", [{"t": "x", "g": 3600.0}]))
    monkeypatch.setattr(usage_page, "usage_report", record("top-users", [UsageRow("ann", ["g"], 3600, 0, 0, 0, 0)]))
    volume = {"user": "ann", "volume": "v", "kind": "home", "bytes": 5, "surveyed": "t"}
    monkeypatch.setattr(usage_page, "storage_by_user", record("storage", [volume]))
    monkeypatch.setattr(usage_page, "group_limits", record("limits", {"ann": {"home": 10}}))
    monkeypatch.setattr(usage_page, "memberships", lambda handler, names: {n: ["g"] for n in names})
    return done


def handler(**args: str) -> Any:
    return SimpleNamespace(get_argument=lambda name, default=None: args.get(name, default))


@pytest.mark.parametrize("chart", charts.CHARTS)
def test_a_csv_download_reads_only_its_chart(reads: list[str], chart: str) -> None:
    data = asyncio.run(usage_page.usage_data(handler(since="7d"), (chart,)))
    assert reads == ([chart, "limits"] if chart == "storage" else [chart])  # limits: the storage chart's
    assert charts.chart_csv(chart, data).count("\r\n") == 2  # the header and one row


def test_the_page_reads_every_chart(reads: list[str]) -> None:
    data = asyncio.run(usage_page.usage_data(handler()))
    assert reads == ["server-hours", "top-users", "storage", "limits"]
    assert data["storage"][0]["percent"] == 50.0 and data["users"][0]["serverHours"] == 1.0
