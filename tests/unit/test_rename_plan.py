"""The rules of a rename (`reconciler.renames`) and the per-user records it moves
(`reconciler.user_records`), with made-up inputs and a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from reconciler import renames, user_records
from reconciler.api.userrename import UserRenameSpec
from reconciler.docker_objects import DockerObjects, OwnedObject
from reconciler.store import Store
from reconciler.stored import Event, StoredResource
from tests.helpers import gm, manifest, parsed
from vocabulary import naming

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def found(**changes: object) -> renames.Found:
    base = dict(old="alice", new="alicia", admin="admin", old_user={"name": "alice", "servers": {}})
    base.update(new_in_hub=False, new_signed_up=False, new_held=False, created=NOW)
    return renames.Found(**(base | changes))  # type: ignore[arg-type]


def test_a_stopped_user_with_a_free_new_name_may_be_renamed() -> None:
    assert renames.problems(found()) == []


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"old_user": None}, "no such user: alice"),
        ({"old_user": {"servers": {"": {"ready": True}}}}, "has a running server ((default)): stop it first"),
        ({"containers": ("jupyter-alice",)}, "has a running server (jupyter-alice)"),
        ({"new_in_hub": True}, "the name alicia is taken"),
        ({"new_signed_up": True}, "the name alicia is taken"),
        ({"new_held": True}, "is held (RENAME_HOLD_DAYS)"),
        ({"open_requests": ("VolumeReset/r1",)}, "requests for alice are not finished: VolumeReset/r1"),
        ({"new_volumes": ("jupyterhub-alicia-home",)}, "volumes of the name alicia already exist"),
        ({"new": "admin"}, "the admin account (admin)"),
        ({"old": "admin"}, "the admin account (admin)"),
        ({"rostered": (("alice", "course-a"),)}, "alice is listed by Roster course-a"),
        ({"new_removed": True}, "the name alicia belonged to an account the platform removed"),
        ({"new": "a" * 129}, "longer than NativeAuthenticator keeps (128 characters)"),
        ({"new_backups": ("nightly",)}, "backups of an earlier alicia exist (nightly): delete them first"),
    ],
)
def test_what_refuses_a_rename(changes: dict, says: str) -> None:
    problems = renames.problems(found(**changes))
    assert any(says in p for p in problems), problems


def test_a_spawn_asked_after_the_rename_was_recorded_waits_and_does_not_refuse_it() -> None:
    later = (NOW + timedelta(seconds=5)).isoformat()
    waiting = {"": {"pending": "spawn", "ready": False, "started": later}}
    assert renames.problems(found(old_user={"servers": waiting})) == []


def test_the_spec_needs_two_different_valid_names() -> None:
    with pytest.raises(ValidationError, match="newName must differ"):
        UserRenameSpec.model_validate({"user": "alice", "newName": "alice"})
    with pytest.raises(ValidationError, match="lowercase"):
        UserRenameSpec.model_validate({"user": "alice", "newName": "Alicia"})


def test_volumes_move_by_the_platforms_naming() -> None:
    template = "jupyterhub-{username}-{volume}"
    existing = {"jupyterhub-alice-home", "jupyterhub-alice-workspace"}
    moves = renames.volume_moves(template, ["home", "workspace", "cache"], "alice", "a.b", existing)
    assert [(m.volume, m.source, m.target, m.state) for m in moves] == [
        ("home", "jupyterhub-alice-home", "jupyterhub-a-2eb-home", "pending"),
        ("workspace", "jupyterhub-alice-workspace", "jupyterhub-a-2eb-workspace", "pending"),
        ("cache", "jupyterhub-alice-cache", "jupyterhub-a-2eb-cache", "absent"),
    ]
    assert moves[0].target == naming.volume_name(template, "a.b", "home")


def stored(kind: str, name: str, owner: str, spec: dict, status: dict | None = None) -> StoredResource:
    return StoredResource(kind, name, owner, "/m/team.yaml" if owner == "gitops" else None, {}, spec, 1, 1, NOW, NOW,
                          status or {})  # fmt: skip


def test_memberships_the_platform_owns_are_rewritten_gitops_ones_are_reported() -> None:
    objs = [
        stored("GroupMembership", "team-a", "api", {"group": "a", "members": ["alice", "bob"], "prune": True}),
        stored("GroupMembership", "team-b", "gitops", {"group": "b", "members": ["alice"], "prune": True}),
        stored("GroupMembership", "team-c", "cli", {"group": "c", "members": ["bob"], "prune": True}),
        stored("GroupMembership", "team-d", "panel", {"group": "d", "members": ["alice", "alicia"], "prune": False}),
    ]
    rewrite, must = renames.membership_plan(objs, "alice", "alicia")
    assert [(o.name, spec["members"]) for o, spec in rewrite] == [
        ("team-a", ["alicia", "bob"]),
        ("team-d", ["alicia"]),
    ]
    assert [(m.name, m.group, m.source) for m in must] == [("team-b", "b", "/m/team.yaml")]


def test_a_backups_catalogue_follows_the_user_and_no_one_elses() -> None:
    status = {
        "phase": "Succeeded",
        "users": [{"user": "alice", "outcome": "Succeeded"}, {"user": "bob", "outcome": "Succeeded"}],
        "archives": [
            {"user": "alice", "volume": "home", "path": "b1/alice/home.tar.gz"},
            {"user": "bob", "volume": "home", "path": "b1/bob/home.tar.gz"},
        ],
    }
    renamed = renames.renamed_backup_status(status, "alice", "alicia")
    assert renamed is not None
    assert [a["user"] for a in renamed["archives"]] == ["alicia", "bob"]
    assert renamed["archives"][0]["path"] == "b1/alice/home.tar.gz"  # the files stay where they are
    assert [u["user"] for u in renamed["users"]] == ["alicia", "bob"]
    assert status["archives"][0]["user"] == "alice"  # the input is not changed
    assert renames.renamed_backup_status(status, "carol", "caroline") is None


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url)
    yield s
    s.close()


def test_every_per_user_record_moves_once(store: Store) -> None:
    for kind in (naming.PLACEMENT_KIND, "KeepAlive", naming.PRIVILEGED_ACCESS_KIND, naming.DOCKER_ACCESS_KIND):
        store.write_observed(kind, "alice", {"kind": kind})
    store.write_observed("KeepAlive", "alicia", {"stale": True})  # of an earlier alicia: replaced
    store.write_observed(naming.OWNED_KIND, "alice", {"not": "a user key"})  # an object id, whatever it looks like
    DockerObjects(store).record("alice", [OwnedObject("container", "c1", "web", NOW)])
    store.apply(parsed(gm("team-a", "a", ["alice"])), "api")
    store.add_event("GroupMembership", "team-a", "Applied", "x", actor="user:alice")
    moved = user_records.move(store, "alice", "alicia")
    assert moved["jhds_observed.name"] == 4
    assert moved["jhds_docker_objects.user"] == 1
    assert moved["jhds_events.subject"] >= 1
    assert store.observed("KeepAlive", "alicia") == {"kind": "KeepAlive"}
    assert store.observed(naming.PLACEMENT_KIND, "alice") == {}
    assert store.observed(naming.OWNED_KIND, "alice") == {"not": "a user key"}
    again = user_records.move(store, "alice", "alicia")
    assert set(again.values()) == {0}
    # a resumed rename (the move committed, its progress not) keeps what the first one moved
    assert store.observed("KeepAlive", "alicia") == {"kind": "KeepAlive"}
    assert store.observed(naming.PLACEMENT_KIND, "alicia") == {"kind": naming.PLACEMENT_KIND}


def test_a_table_added_later_is_one_line(store: Store) -> None:
    toy = Table("jhds_usage_toy", MetaData(), Column("user", String(255)), Column("seconds", Integer))
    toy.create(store.engine)
    with store.session() as s:
        s.execute(insert(toy), [{"user": "alice", "seconds": 5}, {"user": "bob", "seconds": 7}])
    columns = (*user_records.USER_COLUMNS, user_records.UserColumn("jhds_usage_toy", "user"))
    assert user_records.move(store, "alice", "alicia", columns)["jhds_usage_toy.user"] == 1
    assert user_records.move(store, "x", "y", (user_records.UserColumn("jhds_not_there", "user"),)) == {}


def test_nativeauthenticators_record_moves_with_its_password(store: Store) -> None:
    info = Table("users_info", MetaData(), Column("id", Integer, primary_key=True), Column("username", String(128)))
    info.create(store.engine)
    with store.session() as s:
        s.execute(insert(info), [{"username": "alice"}])
    assert user_records.signed_up(store, "alice") and not user_records.signed_up(store, "alicia")
    user_records.move(store, "alice", "alicia", (user_records.NATIVE_RECORD,))
    assert user_records.signed_up(store, "alicia") and not user_records.signed_up(store, "alice")


def test_a_held_name_is_held_until_its_time(store: Store) -> None:
    until = user_records.hold_until(NOW, 30)
    user_records.hold(store, "alice", {"renamedTo": "alicia"}, until)
    assert user_records.held(store, "alice", NOW + timedelta(days=29))
    assert not user_records.held(store, "alice", NOW + timedelta(days=31))
    assert not user_records.held(store, "bob", NOW)
    assert not user_records.held(store, "alice", NOW, renamed_to="alicia")  # renaming alicia back: an undo
    assert user_records.held(store, "alice", NOW, renamed_to="mallory")
    user_records.release(store, "alice")
    assert not user_records.held(store, "alice", NOW)


def latest(store: Store, rename: str) -> Event:
    return max(store.events("UserRename", rename), key=lambda e: e.id)


def test_an_old_name_stays_held_while_anything_still_names_it(store: Store) -> None:
    # Past RENAME_HOLD_DAYS, whoever signed up as alice would inherit what still names her.
    user_records.hold(store, "alice", {"renamedTo": "alicia", "rename": "r1"}, NOW)
    later = NOW + timedelta(days=1)
    store.apply(parsed(gm("team", "team", ["alice", "bob"])), "gitops")  # the admin's file to change
    assert user_records.held(store, "alice", later)
    [event] = store.events("UserRename", "r1")
    assert event.reason == "NameStillHeld" and "GroupMembership/team" in event.message
    assert user_records.held(store, "alice", later) and len(store.events("UserRename", "r1")) == 1  # said once
    store.apply(parsed(gm("team", "team", ["bob"])), "gitops")
    store.apply(parsed(manifest("Roster", "course", {"users": [{"name": "alice"}]})), "gitops")
    assert user_records.held(store, "alice", later)
    assert "Roster/course" in latest(store, "r1").message
    store.delete("Roster", "course")
    assert user_records.held(store, "alice", later, admins={"alice"})  # the hub's admin_users
    assert not user_records.held(store, "alice", later, admins={"admin"})
    assert latest(store, "r1").reason == "NameReleased"
    # a coming name's reservation is not extended: it ends with its rename
    user_records.hold(store, "carol", {"renamedFrom": "cara", "rename": "r2"}, NOW)
    store.apply(parsed(gm("other", "other", ["carol"])), "gitops")
    assert not user_records.held(store, "carol", later)


def test_every_table_column_keyed_by_a_username_is_moved_by_a_rename() -> None:
    # A table added later with a user column must be in USER_COLUMNS (or said here why not).
    import reconciler.deliveries  # (their tables registered on Base)
    import reconciler.usage.tables  # noqa: F401
    from reconciler.tables import Base

    not_moved = {
        ("jhds_resources", "subject"),  # finished requests keep the name they were for (history)
        ("jhds_deliveries", "user"),  # a broadcast's delivery record: what reached whom, then
    }
    moved = {(c.table, c.column) for c in user_records.USER_COLUMNS}
    keyed = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name in ("user", "username", "subject")
    }
    assert keyed - moved - not_moved == set()
