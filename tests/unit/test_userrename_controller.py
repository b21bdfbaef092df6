"""The UserRename controller's order with a real store and stand-ins for the engine, the hub and
the copy helper: refused with nothing changed; the copy checked before an original goes; a
copy that differs removes nothing; a rename interrupted after the copy resumes without
copying again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler import user_records
from reconciler.api import parse_resource
from reconciler.cli import users
from reconciler.cli.client import EXIT_OK
from reconciler.clients.backups import HelperDeadline, HelperRefused
from reconciler.context import Context
from reconciler.controllers import userrename
from reconciler.errors import PermanentError
from reconciler.store import Store
from tests.helpers import gm, parsed
from vocabulary.api import API_VERSION
from vocabulary.settings import load_settings

TEMPLATE = "p-{username}_{volume}"


class Engine:
    def __init__(self, volumes: set[str]) -> None:
        self.volumes, self.log = set(volumes), []  # type: ignore[var-annotated]

    async def user_containers(self, platform: str, user: str) -> list[dict[str, Any]]:
        return []

    async def existing_volumes(self, names: list[str], sizes: bool = False) -> dict[str, dict[str, Any]]:
        return {n: {} for n in names if n in self.volumes}

    async def ensure_volume(self, name: str, labels: dict[str, str], beside: str | None = None) -> bool:
        assert beside == "ann"  # on Swarm: the old name's node
        self.volumes.add(name)
        return True

    async def remove_volume(self, name: str) -> str:
        self.log.append(("remove", name))
        self.volumes.discard(name)
        return "removed"


class Hub:
    def __init__(self, users: dict[str, dict[str, Any]]) -> None:
        self.users = users

    async def get_user(self, name: str) -> dict[str, Any] | None:
        return self.users.get(name)

    async def user_exists(self, name: str) -> bool:
        return name in self.users

    async def rename_user(self, old: str, new: str) -> dict[str, Any]:
        self.users[new] = self.users.pop(old)
        return {"name": new}


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    yield s
    s.close()


def context(store: Store, engine: Engine, hub: Hub, tmp_path) -> Context:
    env = {"PLATFORM_ID": "p", "USER_VOLUME_NAME_TEMPLATE": TEMPLATE, "JUPYTERHUB_STATE_DIR": str(tmp_path)}
    return Context(store=store, hub=hub, settings=load_settings(env), engine=engine)  # type: ignore[arg-type]


def record(store: Store, name: str = "r1") -> Any:
    doc = {"apiVersion": API_VERSION, "kind": "UserRename", "metadata": {"name": name}}
    store.apply([parse_resource({**doc, "spec": {"user": "ann", "newName": "anna"}})], "cli")
    return store.get("UserRename", name)


def copies(engine: Engine, calls: list, differ: bool = False):
    async def copy(_engine: Any, _settings: Any, _job: Any, user: str, moves: dict, token: str) -> dict:
        assert len(token) == 32
        calls.append(dict(moves))
        engine.log.append(("copy", sorted(moves)))
        if differ:
            raise HelperRefused("the copy of home differs from the original")
        return {"copied": [{"volume": k, "files": 3, "bytes": 10, "checksum": "ab" * 32} for k in moves]}

    return copy


def surveyed(committed: list[str]):
    async def survey(_engine: Any, _settings: Any, _name: str, user: str, moves: dict, token: str) -> list[str]:
        return committed

    return survey


def test_a_running_server_refuses_with_nothing_changed(store, tmp_path, monkeypatch) -> None:
    engine, calls = Engine({"p-ann_home"}), []
    monkeypatch.setattr(userrename, "move_volumes", copies(engine, calls))
    hub = Hub({"ann": {"name": "ann", "servers": {"": {"ready": True, "started": "2026-12-07T08:00:00Z"}}}})
    with pytest.raises(PermanentError, match="running server"):
        asyncio.run(userrename.reconcile(record(store), context(store, engine, hub, tmp_path)))
    assert calls == [] and engine.volumes == {"p-ann_home"} and "ann" in hub.users
    assert not user_records.held(store, "ann")


def test_the_copy_is_checked_before_the_originals_go_and_everything_follows(store, tmp_path, monkeypatch) -> None:
    engine, calls = Engine({"p-ann_home", "p-ann_workspace"}), []
    monkeypatch.setattr(userrename, "move_volumes", copies(engine, calls))
    store.apply(parsed(gm("team", "team", ["ann", "bob"])), "api")
    store.write_observed("KeepAlive", "ann", {"until": "later"})
    hub = Hub({"ann": {"name": "ann", "servers": {}}})
    result = asyncio.run(userrename.reconcile(record(store), context(store, engine, hub, tmp_path)))
    status = result.status.dump()
    assert status["phase"] == "Succeeded" and status["step"] == "done"
    assert {v["volume"]: v["state"] for v in status["volumes"]} == {
        "home": "removed",
        "workspace": "removed",
        "cache": "absent",
    }
    assert engine.log[0] == ("copy", ["home", "workspace"])  # before any removal
    assert engine.volumes == {"p-anna_home", "p-anna_workspace"}
    assert "anna" in hub.users and "ann" not in hub.users
    assert store.get("GroupMembership", "team").spec["members"] == ["anna", "bob"]
    assert store.observed("KeepAlive", "anna") == {"until": "later"}
    assert user_records.held(store, "ann") and not user_records.held(store, "anna")
    # who, to what and how long are the spec's and the times': not repeated in the status
    assert not {"user", "newName", "seconds"} & status.keys()
    assert {"startedAt", "finishedAt"} <= status.keys()


def test_hubctl_reports_a_rename_from_its_spec_and_times(capsys) -> None:
    obj = {
        "spec": {"user": "ann", "newName": "anna"},
        "status": {
            "phase": "Succeeded",
            "startedAt": "2026-12-07T08:00:00+00:00",
            "finishedAt": "2026-12-07T08:00:12.5+00:00",
            "holdUntil": "2027-01-06T08:00:12+00:00",
        },
    }
    assert users._report("r1", obj) == EXIT_OK
    assert capsys.readouterr().out.startswith("ann is now anna in 12.5 s; ann held until 2027-01-06")


def test_a_copy_that_differs_removes_nothing(store, tmp_path, monkeypatch) -> None:
    engine, calls = Engine({"p-ann_home"}), []
    monkeypatch.setattr(userrename, "move_volumes", copies(engine, calls, differ=True))
    monkeypatch.setattr(userrename, "committed_volumes", surveyed([]))
    hub = Hub({"ann": {"name": "ann", "servers": {}}})
    with pytest.raises(PermanentError, match=r"differs.*nothing was removed"):
        asyncio.run(userrename.reconcile(record(store), context(store, engine, hub, tmp_path)))
    assert engine.volumes == {"p-ann_home"}  # the original kept, the partial copy removed
    assert ("remove", "p-ann_home") not in engine.log
    assert "ann" in hub.users and not user_records.held(store, "ann") and not user_records.held(store, "anna")


def test_an_interrupted_rename_resumes_without_copying_again(store, tmp_path, monkeypatch) -> None:
    engine, calls = Engine({"p-anna_home"}), []
    monkeypatch.setattr(userrename, "move_volumes", copies(engine, calls))
    obj = record(store)
    volume = {"volume": "home", "source": "p-ann_home", "target": "p-anna_home", "state": "removed"}
    store.write_status("UserRename", "r1", {"phase": "Running", "step": "records", "volumes": [volume]})
    hub = Hub({"ann": {"name": "ann", "servers": {}}})
    result = asyncio.run(
        userrename.reconcile(store.get("UserRename", "r1") or obj, context(store, engine, hub, tmp_path))
    )
    assert result.status.dump()["phase"] == "Succeeded"
    assert calls == [] and "anna" in hub.users


def test_once_an_original_is_gone_both_names_stay_held_past_the_deadline(store, tmp_path, monkeypatch) -> None:
    # The hub's rename fails after the volumes moved: the data lives under the new name alone,
    # so nobody may sign up as it (or as the old name) when the request's deadline passes.
    engine, calls = Engine({"p-ann_home"}), []
    monkeypatch.setattr(userrename, "move_volumes", copies(engine, calls))

    class FailingHub(Hub):
        async def rename_user(self, old: str, new: str) -> dict[str, Any]:
            raise PermanentError("the hub refused the rename", "HubRefused")

    hub = FailingHub({"ann": {"name": "ann", "servers": {}}})
    with pytest.raises(PermanentError, match="hub refused"):
        asyncio.run(userrename.reconcile(record(store), context(store, engine, hub, tmp_path)))
    assert engine.volumes == {"p-anna_home"}
    later = datetime.now(UTC) + timedelta(days=400)  # past any request's deadline
    assert user_records.held(store, "ann", later) and user_records.held(store, "anna", later)


def test_a_helper_that_died_after_marking_the_originals_undoes_nothing(store, tmp_path, monkeypatch) -> None:
    # Killed while emptying the originals: the survey finds this request's marker, so the
    # copies (the only whole ones now) stay, and both names stay held for a re-run.
    engine = Engine({"p-ann_home"})

    async def killed(*_args: Any) -> dict:
        raise HelperDeadline("killed at the deadline")

    monkeypatch.setattr(userrename, "move_volumes", killed)
    monkeypatch.setattr(userrename, "committed_volumes", surveyed(["home"]))
    hub = Hub({"ann": {"name": "ann", "servers": {}}})
    with pytest.raises(PermanentError, match="moving the volumes failed"):
        asyncio.run(userrename.reconcile(record(store), context(store, engine, hub, tmp_path)))
    assert engine.volumes == {"p-ann_home", "p-anna_home"} and not [e for e in engine.log if e[0] == "remove"]
    later = datetime.now(UTC) + timedelta(days=400)
    assert user_records.held(store, "ann", later) and user_records.held(store, "anna", later)
    assert [e.reason for e in store.events("UserRename", "r1")][-1] == "CannotUndo"
    calls: list = []  # re-applied: the same request's helper resumes with the same token
    token = store.get("UserRename", "r1").status["token"]
    resume = copies(engine, calls)

    async def same_token(*args: Any) -> dict:
        assert args[-1] == token
        return await resume(*args)

    monkeypatch.setattr(userrename, "move_volumes", same_token)
    result = asyncio.run(userrename.reconcile(store.get("UserRename", "r1"), context(store, engine, hub, tmp_path)))
    assert result.status.dump()["phase"] == "Succeeded" and engine.volumes == {"p-anna_home"}


def test_a_missing_original_is_never_mounted(store, tmp_path, monkeypatch) -> None:
    # Mounting a volume that is gone makes an empty one: the "copy" would empty the new volume.
    engine, calls = Engine(set()), []
    monkeypatch.setattr(userrename, "move_volumes", copies(engine, calls))
    monkeypatch.setattr(userrename, "committed_volumes", surveyed([]))
    obj = record(store)
    volume = {"volume": "home", "source": "p-ann_home", "target": "p-anna_home", "state": "pending"}
    store.write_status("UserRename", "r1", {"phase": "Running", "step": "copying", "volumes": [volume]})
    hub = Hub({"ann": {"name": "ann", "servers": {}}})
    with pytest.raises(PermanentError, match="p-ann_home are gone"):
        asyncio.run(userrename.reconcile(store.get("UserRename", "r1") or obj, context(store, engine, hub, tmp_path)))
    assert calls == []
