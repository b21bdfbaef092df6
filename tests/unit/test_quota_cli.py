"""`hubctl quota get|grant` and `get quotas`: the requests they make and what they print."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest

main = importlib.import_module("reconciler.cli.main")  # the package's `main` is the function

LIMIT = {
    "field": "serverHours", "usedHours": 10.5, "limitHours": 10, "grantedHours": 0, "percent": 105.0,
    "windowSeconds": 86400, "policy": "team", "freesAt": "2026-12-02T10:00:00Z", "full": True,
}  # fmt: skip
VIEW = {"user": "ann", "quota": {"enforce": "spawn"}, "limits": [LIMIT], "refused": True, "storage": []}


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kw: Any) -> Any:
        self.calls.append((method, path, kw.get("json")))
        body = {"users": [{"user": "ann", **VIEW, "checked": "now"}]} if path == "quotas" else VIEW
        return SimpleNamespace(json=lambda: body)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(main, "Api", lambda url, token: fake)
    return fake


def test_grant_posts_the_hours_and_kind(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["quota", "grant", "ann", "--hours", "2.5", "--kind", "cpu"]) == 0
    assert api.calls == [("POST", "users/ann/quota-grants", {"hours": 2.5, "kind": "cpu"})]
    out = capsys.readouterr().out
    assert "granted 2.5 cpu-hours to ann" in out and "serverHours" in out


def test_grant_needs_hours(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["quota", "grant", "ann"]) == 2
    assert "needs --hours" in capsys.readouterr().err and api.calls == []


def test_get_shows_use_refusal_and_when_it_frees_up(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["quota", "get", "ann"]) == 0
    out = capsys.readouterr().out
    assert "10.50 h" in out and "105%" in out and "2026-12-02T10:00:00Z" in out and "REFUSED" in out
    assert main.main(["get", "quotas"]) == 0
    assert "serverHours 10.50/10 (105%)" in capsys.readouterr().out
