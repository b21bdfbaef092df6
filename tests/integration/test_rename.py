"""Renaming a user on the real engine and hub (docs/users.md): refused while their server
runs (a request from a manifest fails, and `hubctl rename-user --resume` carries it out
once the server is stopped); then every file of every volume survives (the trees compared entry by entry), the
group membership follows, the new name signs in with the old password and starts a server
on the moved volumes, and the old name can neither sign in nor sign up (the sign-up page
answers as for anyone, and no account is made); `hubctl users export` lists the new name in
its group. Everything it made is removed."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from urllib.parse import quote

import docker
import pytest

from tests.harness import Hub
from tests.helpers import apply, events, finished, resource
from tests.integration.backup_volumes import fill, tree

OLD, NEW, GROUP, REQUEST = "rn-olive", "rn-oliver", "rn-team", "rn-olive-to-oliver"
KEYS = ("home", "workspace")


@pytest.fixture
def renamed_user(hub: Hub, admin_session, engine: docker.DockerClient):
    hub.approved_user(admin_session, OLD).close()
    yield
    for name in (OLD, NEW):
        hub.api("DELETE", f"users/{quote(name)}/server")
    for name in (OLD, NEW):
        hub.api("DELETE", f"users/{quote(name)}")
    hub.api("DELETE", "resources/groupmembership/rn-team")
    hub.api("DELETE", f"resources/userrename/{REQUEST}")
    hub.api("DELETE", "resources/groupmembership/rn-stale")
    hub.api("DELETE", f"groups/{GROUP}")
    hub.api("DELETE", "groups/rn-stale")
    for name in (OLD, NEW):
        for key in ("home", "workspace", "cache"):
            with contextlib.suppress(docker.errors.NotFound):
                engine.volumes.get(hub.volume_name(name, key)).remove(force=True)
    with sqlite3.connect(hub.state_dir / "jupyterhub.sqlite") as db:  # the sign-in records
        db.execute("DELETE FROM users_info WHERE username IN (?, ?)", (OLD, NEW))


def signed_up(hub: Hub, name: str) -> bool:
    with sqlite3.connect(hub.state_dir / "jupyterhub.sqlite") as db:
        return db.execute("SELECT 1 FROM users_info WHERE username = ?", (name,)).fetchone() is not None


def test_a_rename_keeps_every_file_and_the_password_and_holds_the_old_name(
    hub: Hub, engine: docker.DockerClient, renamed_user
) -> None:
    hub.start_server(OLD)  # its volumes made by the spawner, then filled beside it
    for key in KEYS:
        fill(engine, hub, OLD, key, extra=f"head -c 3000000 /dev/urandom > /v/{key}.bin\n")
    apply(hub, "GroupMembership", "rn-team", {"group": GROUP, "members": [OLD], "prune": True})

    refused = hub.api("POST", f"users/{OLD}/rename", json={"name": NEW})
    assert refused.status_code == 409 and "running server" in refused.json()["message"], refused.text
    cli = hub.hubctl("rename-user", OLD, NEW)
    assert cli.returncode == 1 and "stop it first" in cli.stderr, cli.stderr
    apply(hub, "UserRename", REQUEST, {"user": OLD, "newName": NEW})  # from a manifest: refused by the reconciler
    refused = finished(hub, "UserRename", REQUEST)
    assert refused["phase"] == "Failed" and refused.get("step") is None, refused
    hub.stop_server(OLD)
    before = {key: tree(engine, hub.volume_name(OLD, key)) for key in KEYS}  # as the stopped lab left them

    cli = hub.hubctl("rename-user", "--resume", REQUEST, timeout=300)  # checked again, then carried out
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert f"{OLD} is now {NEW}" in cli.stdout, cli.stdout
    copied = events(hub, "UserRename", REQUEST, "VolumesCopied")[0]["message"]
    assert "originals emptied in" in copied, copied

    for key in KEYS:  # every entry: path, type, owner, mode, time, content, links, xattrs
        assert tree(engine, hub.volume_name(NEW, key)) == before[key], key
        with pytest.raises(docker.errors.NotFound):
            engine.volumes.get(hub.volume_name(OLD, key))
    assert hub.api("GET", f"users/{OLD}").status_code == 404
    assert GROUP in hub.api("GET", f"users/{NEW}").json()["groups"]
    assert resource(hub, "GroupMembership", "rn-team")["spec"]["members"] == [NEW]

    exported = hub.hubctl("users", "export")
    assert exported.returncode == 0 and f"\n{NEW},{GROUP},," in exported.stdout, exported.stdout + exported.stderr
    assert f"\n{OLD}," not in exported.stdout

    session, error = hub.login(NEW)  # the old password
    assert session is not None, error
    session.close()
    assert hub.login(OLD)[0] is None
    fresh = hub.signup("rn-nobody-yet")
    assert hub.signup(OLD) == fresh  # the same answer as a fresh sign-up awaiting approval
    assert not signed_up(hub, OLD)  # and no account made: the old name is held
    # Past RENAME_HOLD_DAYS (its row's time moved back), a membership still naming the old
    # name keeps it held: whoever signed up as it would be in the group.
    apply(hub, "GroupMembership", "rn-stale", {"group": "rn-stale", "members": [OLD]})
    with sqlite3.connect(hub.state_dir / "jupyterhub.sqlite") as db:
        past = json.dumps({"until": "2000-01-01T00:00:00+00:00", "renamedTo": NEW})
        db.execute("UPDATE jhds_observed SET body = json_set(body, '$.until', json_extract(?, '$.until'))"
                   " WHERE kind = 'RenameHold' AND name = ?", (past, OLD))  # fmt: skip
    assert hub.signup(OLD) == fresh and not signed_up(hub, OLD)
    hub.api("DELETE", "resources/groupmembership/rn-stale")

    hub.start_server(NEW)  # named for who they are now, on the moved volumes
    assert engine.containers.get(hub.container_name(NEW)).status == "running"
    assert "projects" in hub.exec(engine, NEW, "ls /home")
    with sqlite3.connect(hub.state_dir / "jupyterhub.sqlite") as db:
        db.execute("DELETE FROM users_info WHERE username = 'rn-nobody-yet'")
