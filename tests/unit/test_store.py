"""The store on every backend (a SQLite file; PostgreSQL from JHDS_TEST_POSTGRES_URL, see
tests/conftest.py): atomic apply, generation, ownership, prune, events, concurrent writers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.manifests import parse_manifests
from reconciler.store import ConflictError, Store
from reconciler.tables import StatusRow
from tests.helpers import gm, parsed

RESET = """
apiVersion: jupyterhub-ds/v1
kind: VolumeReset
metadata: {{name: {name}}}
spec: {{user: alice, volumes: [{volumes}]}}
"""
TEAM = gm("team", "team", ["alice"])


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url)
    yield s
    s.close()


def test_create_then_unchanged_then_configured(store: Store) -> None:
    assert [r.action for r in store.apply(parsed(TEAM), "cli")] == ["created"]
    assert [r.action for r in store.apply(parsed(TEAM), "cli")] == ["unchanged"]
    assert store.get("GroupMembership", "team").generation == 1
    assert [r.action for r in store.apply(parsed(gm("team", "team", ["alice", "bob"])), "cli")] == ["configured"]
    obj = store.get("GroupMembership", "team")
    assert obj.generation == 2
    assert obj.spec["members"] == ["alice", "bob"]
    assert obj.owner == "cli"


def test_dry_run_changes_nothing(store: Store) -> None:
    assert [r.action for r in store.apply(parsed(TEAM), "cli", dry_run=True)] == ["created"]
    assert store.get("GroupMembership", "team") is None
    assert store.events() == []


def test_changes_are_seen_by_version(store: Store) -> None:
    keys, v0 = store.changed_since(0)
    assert keys == []
    store.apply(parsed(gm("a", "team", ["alice"]), gm("b", "b", ["alice"])), "api")
    keys, v1 = store.changed_since(v0)
    assert sorted(keys) == [("GroupMembership", "a"), ("GroupMembership", "b")]
    assert store.changed_since(v1) == ([], v1)
    store.apply(parsed(gm("a", "team", ["carol"])), "api")
    assert store.changed_since(v1)[0] == [("GroupMembership", "a")]


def test_started_one_shot_is_immutable_and_the_whole_apply_is_refused(store: Store) -> None:
    reset = parse_manifests(RESET.format(name="r1", volumes="cache"), "r.yaml")
    store.apply(reset, "cli")
    # Not started yet: may still change.
    store.apply(parse_manifests(RESET.format(name="r1", volumes="cache, home"), "r.yaml"), "cli")
    store.write_status("VolumeReset", "r1", {"observedGeneration": 2, "phase": "Running"})
    changed = parse_manifests(RESET.format(name="r1", volumes="home"), "r.yaml")
    with pytest.raises(ConflictError, match="volumereset/r1: spec is immutable once started"):
        store.apply(parsed(gm("other", "team", ["alice"])) + changed, "cli")
    assert store.get("GroupMembership", "other") is None  # atomic: nothing of that apply
    assert store.get("VolumeReset", "r1").spec["volumes"] == ["cache", "home"]


def test_prune_only_touches_the_same_owner(store: Store) -> None:
    store.apply(parsed(gm("mine-a", "team", ["alice"]), gm("mine-b", "b", ["alice"])), "cli")
    store.apply(parsed(gm("theirs", "c", ["alice"])), "gitops")
    results = store.apply(parsed(gm("mine-a", "team", ["alice"])), "cli", prune=True)
    assert {(r.name, r.action) for r in results} == {("mine-a", "unchanged"), ("mine-b", "pruned")}
    assert store.keys() == {("GroupMembership", "mine-a"), ("GroupMembership", "theirs")}


def test_prune_scope_limits_prune_to_one_source(store: Store) -> None:
    def src(names: list[str], where: str) -> dict:
        return {("GroupMembership", n): where for n in names}

    store.apply(
        parsed(gm("a", "team", ["alice"]), gm("b", "b", ["alice"])), "cli", sources=src(["a", "b"], "/srv/team")
    )
    store.apply(parsed(gm("c", "c", ["alice"])), "cli", sources=src(["c"], "/srv/team-2"))
    results = store.apply(
        parsed(gm("a", "team", ["alice"])), "cli", sources=src(["a"], "/srv/team"), prune=True, prune_scope="/srv/team"
    )
    assert [(r.name, r.action) for r in results] == [("a", "unchanged"), ("b", "pruned")]
    assert store.keys() == {("GroupMembership", "a"), ("GroupMembership", "c")}


def test_prune_protects_sources_that_failed(store: Store) -> None:
    store.apply(parsed(gm("a", "team", ["alice"])), "gitops", sources={("GroupMembership", "a"): "a.yaml"})
    store.apply(parsed(gm("b", "b", ["alice"])), "gitops", sources={("GroupMembership", "b"): "b.yaml"})
    pruned = store.prune("gitops", keep=set(), protect_sources={"b.yaml"})
    assert [(r.name, r.action) for r in pruned] == [("a", "pruned")]
    assert store.keys() == {("GroupMembership", "b")}


def test_status_and_events(store: Store) -> None:
    store.apply(parsed(TEAM), "panel", actor="user:admin")
    assert store.write_status("GroupMembership", "team", {"phase": "Ready", "observedGeneration": 1})
    assert store.get("GroupMembership", "team").status["phase"] == "Ready"
    assert not store.write_status("GroupMembership", "gone", {})
    store.add_event("GroupMembership", "team", "MembersAdded", "added alice", actor="reconciler")
    events = store.events("GroupMembership", "team")
    assert [(e.reason, e.actor) for e in events] == [("Created", "user:admin"), ("MembersAdded", "reconciler")]
    assert store.delete("GroupMembership", "team", actor="user:admin")
    assert store.get("GroupMembership", "team") is None
    with store.session() as s:  # its status went with it
        assert s.get(StatusRow, ("GroupMembership", "team")) is None
    assert not store.delete("GroupMembership", "team")


def test_two_store_instances_share_one_database(db_url: str) -> None:
    hub_side, reconciler_side = Store(db_url), Store(db_url)
    try:
        hub_side.apply(parsed(TEAM), "api")
        assert reconciler_side.get("GroupMembership", "team") is not None
        reconciler_side.write_status("GroupMembership", "team", {"phase": "Ready"})
        assert hub_side.get("GroupMembership", "team").status == {"phase": "Ready"}
    finally:
        hub_side.close()
        reconciler_side.close()


def test_times_are_utc(store: Store) -> None:
    before = datetime.now(UTC)
    store.apply(parsed(TEAM), "cli")
    store.add_event("GroupMembership", "team", "Checked", "checked")
    obj = store.get("GroupMembership", "team")
    for t in (obj.created, obj.updated, *(e.time for e in store.events())):
        assert t.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= t <= datetime.now(UTC)
    assert obj.manifest()["metadata"]["creationTimestamp"].endswith("Z")
    assert all(e.as_dict()["time"].endswith("Z") for e in store.events())


LABELLED = """
apiVersion: jupyterhub-ds/v1
kind: GroupMembership
metadata: {{name: team, labels: {labels}}}
spec: {{group: team, members: [alice, bob]}}
"""


def test_labels_compare_as_mappings(store: Store) -> None:
    def apply(labels: str) -> list[str]:
        return [r.action for r in store.apply(parse_manifests(LABELLED.format(labels=labels), "t.yaml"), "cli")]

    assert apply("{team: a, tier: '1'}") == ["created"]
    assert store.get("GroupMembership", "team").labels == {"team": "a", "tier": "1"}
    assert apply("{tier: '1', team: a}") == ["unchanged"]  # the same labels in another order
    assert apply("{team: b}") == ["configured"]
    obj = store.get("GroupMembership", "team")
    assert (obj.labels, obj.generation, obj.spec["members"]) == ({"team": "b"}, 1, ["alice", "bob"])


def test_store_instances_created_at_once_on_a_fresh_database(db_url: str) -> None:
    """The hub and the reconciler may both create the tables of an empty database."""
    stores: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_store() -> None:
        start.wait()
        try:
            stores.append(Store(db_url))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        stores[0].apply(parsed(TEAM), "api")
        assert all(s.get("GroupMembership", "team") is not None for s in stores)
        assert stores[-1].changed_since(0)[1] == 1
    finally:
        for s in stores:
            s.close()


THREADS, ROUNDS = 4, 100


def test_concurrent_writers_on_two_instances(db_url: str) -> None:
    """Two instances (the hub and the reconciler), each written by two threads at once:
    applies of a resource of the thread's own and of one they share, status writes and
    events. No write fails (SQLite: WAL and the busy timeout, no "database is locked"), every
    write transaction gets a resource version of its own, in commit order, so a watcher
    following `changed_since` never misses a change."""
    hub_side, reconciler_side = Store(db_url), Store(db_url)
    errors: list[BaseException] = []
    versions: list[int] = []  # the version each write of a thread's own resource got
    shared_actions: list[str] = []
    done = threading.Event()
    start = threading.Barrier(THREADS + 1)

    def writer(n: int) -> None:
        store = (hub_side, reconciler_side)[n % 2]
        own = f"own-{n}"
        start.wait()
        try:
            for i in range(ROUNDS):
                store.apply(parsed(gm(own, own, [f"m{i}"])), "api")
                obj = store.get("GroupMembership", own)  # nobody else writes this one
                versions.append(obj.resource_version)
                assert store.write_status("GroupMembership", own, {"observedGeneration": obj.generation, "i": i})
                result = store.apply(parsed(gm("shared", "shared", [f"w{n}"])), "api")
                shared_actions.append(result[0].action)
                store.write_status("GroupMembership", "shared", {"by": n, "i": i})
                if i % 10 == 0:
                    store.add_event("GroupMembership", own, "Tick", f"round {i}")
        except BaseException as e:
            errors.append(e)

    # The watcher: what the reconciler's loop does. Whenever it sees a change it records the
    # resource's version then; at the end that must be each resource's last version.
    seen: dict[tuple[str, str], int] = {}

    def watcher() -> None:
        version = 0
        start.wait()
        try:
            while True:
                stop = done.is_set()  # read before the last call: it then sees every write
                keys, version = reconciler_side.changed_since(version)
                for key in keys:
                    obj = reconciler_side.get(*key)
                    seen[key] = max(seen.get(key, 0), obj.resource_version)
                if stop:
                    return
                time.sleep(0.002)  # a poll interval, as short as it gets
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    watch = threading.Thread(target=watcher)
    for t in [*threads, watch]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watch.join()
    try:
        assert errors == []
        assert len(versions) == THREADS * ROUNDS
        assert len(set(versions)) == len(versions), "a resource version was handed out twice"

        objs = {o.name: o for o in hub_side.list("GroupMembership")}
        for n in range(THREADS):
            own = objs[f"own-{n}"]
            assert own.generation == ROUNDS
            assert own.spec["members"] == [f"m{ROUNDS - 1}"]
            assert own.status == {"observedGeneration": ROUNDS, "i": ROUNDS - 1}
        # Every apply of the shared resource saw the one before it: one creation, and its
        # generation counts exactly the applies that changed it.
        shared = objs["shared"]
        assert shared_actions.count("created") == 1
        assert shared.generation == 1 + shared_actions.count("configured")
        assert shared.status["by"] in range(THREADS)

        _, last = hub_side.changed_since(0)
        assert max(o.resource_version for o in objs.values()) == last
        assert seen == {o.key: o.resource_version for o in objs.values()}
        assert len([e for e in hub_side.events(limit=10_000) if e.reason == "Tick"]) == THREADS * ROUNDS // 10
    finally:
        hub_side.close()
        reconciler_side.close()


def test_a_schema_1_database_is_migrated_and_its_finished_one_shots_found(db_url: str) -> None:
    from sqlalchemy import text

    from reconciler.tables import SCHEMA_VERSION, MetaRow, ResourceRow

    store = Store(db_url)
    reset = (
        "apiVersion: jupyterhub-ds/v1\nkind: VolumeReset\nmetadata: {name: old}\n"
        "spec: {user: sam, volumes: [cache], ttlSecondsAfterFinished: 60}\n"
    )
    store.apply(parse_manifests(reset, "r.yaml"), "cli")
    store.write_status("VolumeReset", "old", {"phase": "Succeeded", "observedGeneration": 1})
    with store.session() as s:  # as schema 1 left it: no bookkeeping columns filled in
        row = s.get(ResourceRow, ("VolumeReset", "old"))
        row.finished = row.expires = row.subject = None
        s.get(MetaRow, "schema_version").value = 1
        s.execute(text("DROP INDEX ix_jhds_resources_subject"))
    store.close()
    store = Store(db_url)  # opening it migrates, once
    obj = store.get("VolumeReset", "old")
    assert obj.finished is not None
    assert store.live_keys(obj.finished) == set()  # finished: not listed by a resync
    assert store.open_requests("VolumeReset", "sam") == []
    with store.session() as s:
        row = s.get(ResourceRow, ("VolumeReset", "old"))
        assert row.subject == "sam" and (row.expires - row.finished).total_seconds() == 60
        assert s.get(MetaRow, "schema_version").value == SCHEMA_VERSION
    store.close()


def test_a_kinds_fingerprint_changes_with_its_resources_and_statuses_only(store: Store) -> None:
    empty = store.fingerprint("GroupMembership")
    store.apply(parsed(TEAM), "cli")
    created = store.fingerprint("GroupMembership")
    assert created != empty
    store.apply(parse_manifests(RESET.format(name="r", volumes="home"), "t.yaml"), "cli")
    assert store.fingerprint("GroupMembership") == created  # another kind's change
    time.sleep(0.01)
    store.write_status("GroupMembership", "team", {"phase": "Ready"})
    written = store.fingerprint("GroupMembership")
    assert written != created
    store.delete("GroupMembership", "team")
    assert store.fingerprint("GroupMembership") not in (written, created)
