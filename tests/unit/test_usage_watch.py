"""The usage watch's reading of the hub's active-users listing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.controllers.usage import active_servers, engine_socket
from reconciler.errors import TemporaryError


def test_every_listed_server_with_its_start_groups_and_readiness() -> None:
    users = [
        {
            "name": "alice",
            "groups": ["physics"],
            "servers": {
                "": {"ready": True, "started": "2026-12-07T08:00:00.123456Z"},
                "gpu": {"ready": False, "pending": "spawn", "started": "2026-12-07T08:05:00Z"},
                "odd": {"ready": False, "started": None},
            },
        },
        {"name": "bob", "servers": {}},
    ]
    found = active_servers(users)
    assert [(a.user, a.server, a.started, a.groups, a.ready) for a in found] == [
        ("alice", "", datetime(2026, 12, 7, 8, 0, 0, 123456, tzinfo=UTC), ("physics",), True),
        ("alice", "gpu", datetime(2026, 12, 7, 8, 5, tzinfo=UTC), ("physics",), False),
    ]


def test_a_listing_without_servers_is_refused_rather_than_closing_every_session() -> None:
    with pytest.raises(TemporaryError, match="read:servers"):
        active_servers([{"name": "alice", "groups": []}])


def test_the_engine_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert engine_socket() == "/var/run/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/other.sock")
    assert engine_socket() == "/run/other.sock"
