"""`PlatformSpawner.rename` (JupyterHub 6 renames stopped named servers): what the platform
keeps of a server is its user's, and no container of the old name is left behind."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from hub_config.spawner import PlatformSpawner
from vocabulary import naming


class FakeEngine:
    """The engine calls DockerSpawner makes (`self.docker(method, ...)`), by object name."""

    def __init__(self, containers: dict[str, str]) -> None:
        self.containers = dict(containers)  # name -> id
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((method, args))
        if method == "inspect_container":
            if args[0] not in self.containers:
                raise docker.errors.APIError("gone", response=SimpleNamespace(status_code=404, reason="Not Found"))
            return {"Id": self.containers[args[0]]}
        if method == "remove_container":
            self.containers = {n: i for n, i in self.containers.items() if i != args[0]}
            return None
        raise AssertionError(f"unexpected engine call {method}")


def spawner(name: str, state: dict[str, Any], engine: FakeEngine) -> PlatformSpawner:
    user = SimpleNamespace(name="alice", groups=[], url="/user/alice/", db=None, id=1)
    orm = SimpleNamespace(server=None, state=state, name=name)
    s = PlatformSpawner(user=user, orm_spawner=orm)  # its name is the database's (orm_spawner.name)
    s.load_state = lambda state: None  # not the hub's start: nothing to record
    s.docker = engine
    return s


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_STATE_DIR", str(tmp_path))


def test_the_renamed_server_has_the_same_volumes_and_a_container_of_its_new_name() -> None:
    engine = FakeEngine({})
    old, new = spawner("My Analysis", {}, engine), spawner("my-analysis", {}, engine)
    asyncio.run(old.rename("My Analysis", "my-analysis"))
    assert new.user_volume_names() == old.user_volume_names()  # the user's volumes, whatever the name
    assert new.object_name == naming.container_name(new.settings.container_prefix, "alice", "my-analysis")
    assert old.object_name == naming.container_name(old.settings.container_prefix, "alice", "My Analysis")
    assert [m for m, _ in engine.calls] == ["inspect_container"]  # nothing to remove


def test_a_container_left_under_the_old_name_is_removed_and_forgotten() -> None:
    engine = FakeEngine({})
    old = spawner("My Analysis", {}, engine)
    engine.containers = {old.object_name: "c0ffee", "someone-else": "beef"}
    old.object_id = "c0ffee"
    asyncio.run(old.rename("My Analysis", "my-analysis"))
    assert engine.containers == {"someone-else": "beef"}
    assert old.orm_spawner.state == {} and old.object_id == ""
