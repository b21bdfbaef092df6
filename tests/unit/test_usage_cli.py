"""`hubctl usage`: the window's forms (shared with the REST API), the parser, the formats."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from reconciler import cli
from reconciler.cli.main import build_parser
from reconciler.cli.usage import as_csv, as_table
from reconciler.usage.window import parse_window

NOW = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "want"),
    [
        (None, None, ("2026-11-07T08:30:00+00:00", "2026-12-07T08:30:00+00:00")),
        ("12h", None, ("2026-12-06T20:30:00+00:00", "2026-12-07T08:30:00+00:00")),
        ("7d", "2026-12-01", ("2026-11-25T00:00:00+00:00", "2026-12-02T00:00:00+00:00")),  # until's day included
        ("2026-11-01", "2026-11-30", ("2026-11-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00")),
        (
            "2026-11-01T08:00:00Z",
            "2026-11-01T10:00:00+01:00",
            ("2026-11-01T08:00:00+00:00", "2026-11-01T09:00:00+00:00"),
        ),
    ],
)
def test_window_forms(since: str | None, until: str | None, want: tuple[str, str]) -> None:
    start, end = parse_window(since, until, NOW)
    assert (start.isoformat(), end.isoformat()) == want


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("30 days", None, "since must be a duration back from until (30d, 12h) or a date or time, got '30 days'"),
        ("30d", "tomorrow", "until must be a date (2026-11-01) or a time"),
        ("2026-12-08", None, "must be before until"),
        # a window the size of the ledger and more: refused, never a scan of everything
        ("0001-01-01", None, "the window is at most 731 days"),
        ("800d", None, "the window is at most 731 days"),
        # past the calendar's ends: a clear 400, not an OverflowError (a 500)
        ("99999999d", None, "since must be a duration back from until"),
        ("30d", "9999-12-31", "until "),
    ],
)
def test_bad_windows_say_what_is_accepted(since: str, until: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_window(since, until, NOW)


def test_the_parser() -> None:
    args = build_parser().parse_args(["usage"])
    assert (args.by, args.since, args.until, args.output) == ("user", "30d", None, "table")
    args = build_parser().parse_args(["usage", "--by", "group", "--since", "2026-11-01", "-o", "csv"])
    assert (args.by, args.since, args.output) == ("group", "2026-11-01", "csv")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["usage", "--by", "host"])


DOC = {
    "since": "2026-11-07T08:30:00Z",
    "until": "2026-12-07T08:30:00Z",
    "by": "group",
    "rows": [
        {
            "group": "physics",
            "groups": ["physics"],
            "serverSeconds": 7200.0,
            "cpuSeconds": 1800.0,
            "memoryGiBHours": 1.5,
            "gpuSeconds": 0.0,
            "storageBytes": 3 * 1024**3,
        }
    ],
}


def test_table_and_csv() -> None:
    assert as_table(DOC).splitlines() == [
        "usage by group from 2026-11-07T08:30:00Z until 2026-12-07T08:30:00Z",
        "GROUP     GROUPS    SERVER-H   CPU-H   MEM-GIB-H   GPU-H   STORAGE",
        "physics   physics   2.00       0.50    1.50        0.00    3.0 GiB",
    ]
    assert as_csv(DOC) == (
        "group,groups,serverSeconds,cpuSeconds,memoryGiBHours,gpuSeconds,storageBytes\n"
        "physics,physics,7200.0,1800.0,1.5,0.0,3221225472\n"
    )


@pytest.fixture
def hub() -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    calls: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            calls.append({"path": url.path, "query": parse_qs(url.query)})
            data = json.dumps(DOC).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield ["--url", f"http://127.0.0.1:{server.server_port}", "--token", "t"], calls
    server.shutdown()
    server.server_close()


def test_usage_asks_the_hub_and_prints_json(hub, capsys: pytest.CaptureFixture[str]) -> None:
    conn, calls = hub
    assert cli.main([*conn, "usage", "--by", "group", "--since", "7d", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == DOC
    assert calls == [{"path": "/hub/api/usage", "query": {"by": ["group"], "since": ["7d"]}}]


def test_a_bad_window_is_a_usage_error_before_any_request(hub, capsys: pytest.CaptureFixture[str]) -> None:
    conn, calls = hub
    assert cli.main([*conn, "usage", "--since", "last week"]) == 2
    assert "since must be a duration" in capsys.readouterr().err
    assert calls == []
