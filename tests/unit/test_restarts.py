"""Restarting a server through the hub, written once (`reconciler/restarts.py`): each step
recorded before its side effect, a resumed restart picking up at its step, one polling
interval for every wait."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reconciler import restarts
from reconciler.errors import PermanentError, TemporaryError


class FakeHub:
    """ann's servers; a stop or a start takes `lag` looks at the hub to complete."""

    def __init__(self, running: set[str], lag: int = 0) -> None:
        self.running = {name: {"ready": True} for name in running}
        self.log: list[str] = []
        self.lag = lag
        self._pending: list[tuple[int, str, str]] = []  # (looks left, action, server)
        self.lost_starts = 0  # starts the hub forgets (a spawn that fails)

    async def get_user(self, name: str) -> dict[str, Any] | None:
        still = []
        for left, action, server in self._pending:
            if left > 0:
                still.append((left - 1, action, server))
            elif action == "stop":
                self.running.pop(server, None)
            else:
                self.running[server] = {"ready": True}
        self._pending = still
        return {"name": name, "servers": dict(self.running)} if name == "ann" else None

    async def stop_server(self, user: str, server: str = "") -> None:
        self.log.append(f"stop {server}")
        self._pending.append((self.lag, "stop", server))

    async def start_server(self, user: str, server: str = "") -> None:
        self.log.append(f"start {server}")
        if server in self.running:
            raise PermanentError(f"{user}/{server} is already running", "BadRequest")
        if self.lost_starts:
            self.lost_starts -= 1
            return
        self.running[server] = {"ready": False}
        self._pending.append((self.lag, "start", server))


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restarts, "POLL", 0.001)


def run_restart(hub: FakeHub, step: restarts.Step | None, timeout: float = 1.0) -> list[str]:
    """The restart of ann's default server from `step`; the hub's log with the steps recorded."""

    async def record(step: restarts.Step) -> None:
        hub.log.append(f"record {step}")

    asyncio.run(restarts.restart(hub, "ann", "", timeout, step, record))  # type: ignore[arg-type]
    return hub.log


def test_each_step_is_recorded_before_its_side_effect() -> None:
    hub = FakeHub({""}, lag=3)
    assert run_restart(hub, None) == ["record stopping", "stop ", "record starting", "start "]
    assert hub.running == {"": {"ready": True}}


def test_a_restart_resumed_after_its_stop_does_not_stop_again() -> None:
    hub = FakeHub(set())
    assert run_restart(hub, "stopping") == ["record starting", "start "]


def test_a_start_lost_in_a_crash_is_sent_again() -> None:
    hub = FakeHub(set())
    assert run_restart(hub, "starting") == ["start "]
    assert hub.running == {"": {"ready": True}}


def test_a_server_started_meanwhile_by_its_user_is_as_good() -> None:
    hub = FakeHub({""})
    assert run_restart(hub, "starting") == []
    asyncio.run(restarts.start(hub, "ann", ""))  # type: ignore[arg-type]
    assert hub.log == ["start "]  # refused by the hub: it runs, which is what was asked


def test_a_start_that_fails_twice_is_a_failed_attempt_at_once() -> None:
    """Sent again once at once; gone again after that, it fails without waiting for the timeout."""
    hub = FakeHub({""})
    hub.lost_starts = 2
    with pytest.raises(TemporaryError, match="the start of ann's default server failed"):
        run_restart(hub, None, timeout=60)
    assert hub.log == ["record stopping", "stop ", "record starting", "start ", "start "]


def test_a_stop_that_does_not_complete_times_out() -> None:
    hub = FakeHub({""}, lag=10**6)
    with pytest.raises(TemporaryError, match=r"not stopped after 0\.05 s"):
        run_restart(hub, None, timeout=0.05)


def test_an_unknown_user_is_permanent() -> None:
    with pytest.raises(PermanentError, match="no such user: bob"):
        asyncio.run(restarts.server_model(FakeHub(set()), "bob", ""))  # type: ignore[arg-type]


def test_stop_all_waits_for_every_server() -> None:
    hub = FakeHub({"", "gpu", "other"}, lag=2)
    asyncio.run(restarts.stop_all(hub, "ann", ["", "gpu"], 1.0))  # type: ignore[arg-type]
    assert hub.log == ["stop ", "stop gpu"] and set(hub.running) == {"other"}
    hub = FakeHub({""}, lag=10**6)
    with pytest.raises(TemporaryError, match=r"the servers of ann did not stop within 0\.05 s"):
        asyncio.run(restarts.stop_all(hub, "ann", [""], 0.05))  # type: ignore[arg-type]


def test_every_restart_polls_at_the_one_interval() -> None:
    """No controller keeps a polling interval of its own for a restart."""
    from reconciler.controllers import privilegedaccess, rolloutrestart, serverrestart, volumebackup

    for module in (privilegedaccess, rolloutrestart, serverrestart, volumebackup):
        assert not hasattr(module, "POLL"), module.__name__
