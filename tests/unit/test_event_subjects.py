"""Events are bounded per subject (the user they came from or are about) as well as overall:
one user's storm never pushes out another user's or the platform's history."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from reconciler.applying import subject_of
from reconciler.manifests import parse_manifests
from reconciler.store import Store
from reconciler.tables import SCHEMA_VERSION

SR = "apiVersion: jupyterhub-ds/v1\nkind: ServerRestart\nmetadata: {{name: {name}}}\nspec: {{user: {user}}}\n"
GM = "apiVersion: jupyterhub-ds/v1\nkind: GroupMembership\nmetadata: {name: team}\nspec: {group: team, members: []}\n"


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url, events_per_subject=10)
    yield s
    s.close()


def test_whose_event_it_is() -> None:
    assert subject_of("IdleCullPolicy", "gpu", "user:ann") == "ann"  # who asked
    assert subject_of("ServerRestart", "r1", None, "bob") == "bob"  # whom the request is for
    assert subject_of("PrivilegedAccess", "cat", None) == "cat"  # a per-user watch's key
    assert subject_of("GroupMembership", "team", "gitops") is None  # the platform's
    assert subject_of("Broadcast", "b", "service:automation") is None


def test_one_users_storm_keeps_only_their_newest(store: Store) -> None:
    store.apply(parse_manifests(GM, "g.yaml"), "gitops", actor="gitops")
    store.apply(parse_manifests(SR.format(name="bob-r", user="bob"), "r.yaml"), "api", actor="user:bob")
    store.add_event("ServerRestart", "bob-r", "Restarted", "bob's server restarted")  # the controller's
    for i in range(50):  # ann's keep-alive storm
        store.add_event("IdleCullPolicy", "gpu", "KeptAlive", f"ann keeps {i}", actor="user:ann")
        store.request_reconcile("GroupMembership", "team", actor="user:ann")
    events = store.events(limit=1000)
    ann = [e for e in events if e.subject == "ann"]
    assert len(ann) == 10 and ann[-1].message == "reconcile now"
    assert [e.message for e in ann if e.reason == "KeptAlive"][-1] == "ann keeps 49"
    assert [e.reason for e in events if e.subject == "bob"] == ["Created", "Restarted"]
    assert [e.reason for e in events if e.subject is None] == ["Created"]  # the platform's


def test_housekeeping_trims_per_subject_then_overall(store: Store) -> None:
    store.events_per_subject = 1000
    for i in range(30):
        store.add_event("IdleCullPolicy", "gpu", "KeptAlive", f"{i}", actor="user:ann")
    store.add_event("GroupMembership", "team", "Changed", "platform")
    store.events_per_subject = 5
    assert store.trim_events(30, 100) == 25
    assert [e.subject for e in store.events(limit=100)].count("ann") == 5
    assert store.trim_events(30, 100) == 0


def test_a_schema_2_database_gets_the_events_subject(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.sqlite"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("DROP INDEX ix_jhds_events_subject"))
        c.execute(text("ALTER TABLE jhds_events DROP COLUMN subject"))
        c.execute(
            text(
                "INSERT INTO jhds_events (time, kind, name, type, reason, message) "
                "VALUES ('2026-12-01 00:00:00', 'K', 'n', 'Normal', 'Old', 'before')"
            )
        )
        c.execute(text("UPDATE jhds_meta SET value = 2 WHERE key = 'schema_version'"))
    store = Store(url)
    store.add_event("IdleCullPolicy", "gpu", "KeptAlive", "after", actor="user:ann")
    assert [(e.message, e.subject) for e in store.events()] == [("before", None), ("after", "ann")]
    store.close()
    assert "subject" in {c["name"] for c in inspect(engine).get_columns("jhds_events")}
    with engine.connect() as c:
        assert (
            c.execute(text("SELECT value FROM jhds_meta WHERE key = 'schema_version'")).scalar_one() == SCHEMA_VERSION
        )
    engine.dispose()
