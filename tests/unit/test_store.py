"""The store on a real SQLite file: atomic apply, generation, ownership, prune, events."""

from __future__ import annotations

import pytest

from reconciler.manifests import parse_manifests
from reconciler.store import ConflictError, Store

GM = """
apiVersion: jupyterhub-ds/v1
kind: GroupMembership
metadata: {{name: {name}}}
spec: {{group: {group}, members: [{members}]}}
"""
RESET = """
apiVersion: jupyterhub-ds/v1
kind: VolumeReset
metadata: {{name: {name}}}
spec: {{user: alice, volumes: [{volumes}]}}
"""


def gm(name: str = "team", group: str = "team", members: str = "alice") -> list:
    return parse_manifests(GM.format(name=name, group=group, members=members), "test.yaml")


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    yield s
    s.close()


def test_create_then_unchanged_then_configured(store: Store) -> None:
    assert [r.action for r in store.apply(gm(), "cli")] == ["created"]
    assert [r.action for r in store.apply(gm(), "cli")] == ["unchanged"]
    assert store.get("GroupMembership", "team").generation == 1
    assert [r.action for r in store.apply(gm(members="alice, bob"), "cli")] == ["configured"]
    obj = store.get("GroupMembership", "team")
    assert obj.generation == 2
    assert obj.spec["members"] == ["alice", "bob"]
    assert obj.owner == "cli"


def test_dry_run_changes_nothing(store: Store) -> None:
    assert [r.action for r in store.apply(gm(), "cli", dry_run=True)] == ["created"]
    assert store.get("GroupMembership", "team") is None
    assert store.events() == []


def test_changes_are_seen_by_version(store: Store) -> None:
    keys, v0 = store.changed_since(0)
    assert keys == []
    store.apply(gm("a") + gm("b", group="b"), "api")
    keys, v1 = store.changed_since(v0)
    assert sorted(keys) == [("GroupMembership", "a"), ("GroupMembership", "b")]
    assert store.changed_since(v1) == ([], v1)
    store.apply(gm("a", members="carol"), "api")
    assert store.changed_since(v1)[0] == [("GroupMembership", "a")]


def test_started_one_shot_is_immutable_and_the_whole_apply_is_refused(store: Store) -> None:
    reset = parse_manifests(RESET.format(name="r1", volumes="cache"), "r.yaml")
    store.apply(reset, "cli")
    # Not started yet: may still change.
    store.apply(parse_manifests(RESET.format(name="r1", volumes="cache, home"), "r.yaml"), "cli")
    store.write_status("VolumeReset", "r1", {"observedGeneration": 2, "phase": "Running"})
    changed = parse_manifests(RESET.format(name="r1", volumes="home"), "r.yaml")
    with pytest.raises(ConflictError, match="volumereset/r1: spec is immutable once started"):
        store.apply(gm("other") + changed, "cli")
    assert store.get("GroupMembership", "other") is None  # atomic: nothing of that apply
    assert store.get("VolumeReset", "r1").spec["volumes"] == ["cache", "home"]


def test_prune_only_touches_the_same_owner(store: Store) -> None:
    store.apply(gm("mine-a") + gm("mine-b", group="b"), "cli")
    store.apply(gm("theirs", group="c"), "gitops")
    results = store.apply(gm("mine-a"), "cli", prune=True)
    assert {(r.name, r.action) for r in results} == {("mine-a", "unchanged"), ("mine-b", "pruned")}
    assert store.keys() == {("GroupMembership", "mine-a"), ("GroupMembership", "theirs")}


def test_prune_scope_limits_prune_to_one_source(store: Store) -> None:
    def src(names: list[str], where: str) -> dict:
        return {("GroupMembership", n): where for n in names}

    store.apply(gm("a") + gm("b", group="b"), "cli", sources=src(["a", "b"], "/srv/team"))
    store.apply(gm("c", group="c"), "cli", sources=src(["c"], "/srv/team-2"))
    results = store.apply(gm("a"), "cli", sources=src(["a"], "/srv/team"), prune=True, prune_scope="/srv/team")
    assert [(r.name, r.action) for r in results] == [("a", "unchanged"), ("b", "pruned")]
    assert store.keys() == {("GroupMembership", "a"), ("GroupMembership", "c")}


def test_prune_protects_sources_that_failed(store: Store) -> None:
    store.apply(gm("a"), "gitops", sources={("GroupMembership", "a"): "a.yaml"})
    store.apply(gm("b", group="b"), "gitops", sources={("GroupMembership", "b"): "b.yaml"})
    pruned = store.prune("gitops", keep=set(), protect_sources={"b.yaml"})
    assert [(r.name, r.action) for r in pruned] == [("a", "pruned")]
    assert store.keys() == {("GroupMembership", "b")}


def test_status_and_events(store: Store) -> None:
    store.apply(gm(), "panel", actor="user:admin")
    assert store.write_status("GroupMembership", "team", {"phase": "Ready", "observedGeneration": 1})
    assert store.get("GroupMembership", "team").status["phase"] == "Ready"
    assert not store.write_status("GroupMembership", "gone", {})
    store.add_event("GroupMembership", "team", "MembersAdded", "added alice", actor="reconciler")
    events = store.events("GroupMembership", "team")
    assert [(e.reason, e.actor) for e in events] == [("Created", "user:admin"), ("MembersAdded", "reconciler")]
    assert store.delete("GroupMembership", "team", actor="user:admin")
    assert store.get("GroupMembership", "team") is None
    assert not store.delete("GroupMembership", "team")


def test_two_store_instances_share_one_database(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/hub.sqlite"
    hub_side, reconciler_side = Store(url), Store(url)
    hub_side.apply(gm(), "api")
    assert reconciler_side.get("GroupMembership", "team") is not None
    reconciler_side.write_status("GroupMembership", "team", {"phase": "Ready"})
    assert hub_side.get("GroupMembership", "team").status == {"phase": "Ready"}
