"""Roster: validation with file and line, the diff of desired against the hub, the one-manager
rule across kinds, the account records (approval, one-time passwords read once), and the
controller against a fake hub counting its calls (re-applying writes nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import bcrypt
import pytest
from sqlalchemy import select, update

from reconciler.accounts import REMOVED, USERS_INFO, AccountRow, Accounts, hash_one_time, record
from reconciler.api.roster import RosterSpec, plan
from reconciler.controllers import roster as controller
from reconciler.manifests import ManifestError, parse_manifests
from reconciler.store import ConflictError, Store
from tests.helpers import gm, manifest, parsed
from vocabulary import scopes


def roster(name: str, users: list[dict[str, Any]], **spec: Any) -> str:
    return manifest("Roster", name, {"users": users, **spec})


def issues(text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifests(text, "people.yaml")
    return [str(i) for i in info.value.issues]


# --- validation -------------------------------------------------------------------------------


def test_duplicate_names_are_refused_with_file_and_line() -> None:
    text = roster("course", [{"name": "ann"}, {"name": "bob"}, {"name": "ann"}])
    [problem] = issues(text)
    assert problem.startswith("people.yaml:6: spec.users") and "repeated: 'ann'" in problem
    block = "apiVersion: jupyterhub-ds/v1\nkind: Roster\nmetadata: {name: c}\nspec:\n  users:\n"
    block += "  - name: ann\n    groups: [g1, g1]\n"
    [problem] = issues(block)
    assert problem.startswith("people.yaml:7: spec.users[0].groups") and "repeated: 'g1'" in problem


@pytest.mark.parametrize("bad", ["Ann", "a b", "a/b", "-ann", ""])
def test_usernames_follow_the_hubs_rule(bad: str) -> None:
    [problem] = issues(roster("course", [{"name": "ok"}, {"name": bad}]))
    assert "spec.users[1].name" in problem


def test_unknown_fields_and_choices_are_errors() -> None:
    found = issues(roster("course", [{"name": "ann", "gruops": ["a"]}], removal="shred"))
    assert any("spec.users[0].gruops" in p for p in found) and any("spec.removal" in p for p in found)
    assert any("spec.users[0].email" in p for p in issues(roster("c", [{"name": "ann", "email": "not an email"}])))


def test_defaults_keep_volumes_and_give_one_time_passwords() -> None:
    [res] = parsed(roster("course", [{"name": "ann", "groups": ["g1"], "displayName": "Ann A."}]))
    assert (res.spec.removal, res.spec.passwords, res.spec.groups()) == ("keep", "oneTime", ["g1"])


# --- the diff ---------------------------------------------------------------------------------


def spec(users: dict[str, list[str]], **more: Any) -> RosterSpec:
    return RosterSpec.model_validate({"users": [{"name": n, "groups": g} for n, g in users.items()], **more})


def test_plan_creates_the_missing_and_sets_each_groups_members() -> None:
    s = spec({"ann": ["g1"], "bob": ["g1", "g2"], "cy": []})
    p = plan(s, {"bob", "zed"}, {"g1": {"bob", "zed"}}, {})
    assert p.create == ["ann", "cy"] and p.create_groups == ["g2"]
    assert p.add == {"g1": ["ann"], "g2": ["bob"]} and p.remove == {"g1": ["zed"]}  # the roster manages g1
    assert p.removals == []


def test_plan_of_an_unchanged_roster_writes_nothing() -> None:
    s = spec({"ann": ["g1"], "bob": ["g1", "g2"]})
    p = plan(s, {"ann", "bob", "other"}, {"g1": {"ann", "bob"}, "g2": {"bob"}, "g3": {"other"}}, {"ann": "active"})
    assert p.writes == 0


def test_plan_removes_who_is_no_longer_listed_once() -> None:
    s = spec({"ann": ["g1"]})
    managed = {"ann": "active", "bob": "active", "cy": "removing", "dee": REMOVED}
    p = plan(s, {"ann", "bob", "cy"}, {"g1": {"ann", "bob"}}, managed)
    assert p.removals == ["bob", "cy"]  # dee's removal is done
    assert p.remove == {}  # bob leaves g1 with his account


# --- the rules of applying --------------------------------------------------------------------


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def test_a_group_has_one_manager_across_kinds(store: Store) -> None:
    store.apply(parsed(gm("team", "team", ["ann"])), "cli")
    with pytest.raises(ConflictError, match="roster/course: group 'team' is already managed by groupmembership/team"):
        store.apply(parsed(roster("course", [{"name": "ann", "groups": ["team"]}])), "cli")
    store.apply(parsed(roster("course", [{"name": "ann", "groups": ["lab"]}])), "cli")
    with pytest.raises(ConflictError, match="groupmembership/lab: group 'lab' is already managed by roster/course"):
        store.apply(parsed(gm("lab", "lab", ["bob"])), "cli")
    with pytest.raises(ConflictError, match="roster/other: group 'lab' is already managed by roster/course"):
        store.apply(parsed(roster("other", [{"name": "cy", "groups": ["lab"]}])), "cli")
    # in one apply: the second of the two is refused, and nothing of it is applied
    with pytest.raises(ConflictError, match="roster/r2: group 'x' is already managed by groupmembership/gx"):
        store.apply(parsed(gm("gx", "x", []), roster("r2", [{"name": "dee", "groups": ["x"]}])), "cli")
    assert store.get("GroupMembership", "gx") is None


def test_a_person_has_one_roster(store: Store) -> None:
    store.apply(parsed(roster("a", [{"name": "ann"}])), "cli")
    with pytest.raises(ConflictError, match=r"roster/b: ann already listed by roster/a"):
        store.apply(parsed(roster("b", [{"name": "bob"}, {"name": "ann"}])), "cli")
    store.apply(parsed(roster("a", [{"name": "ann"}, {"name": "cy"}])), "cli")  # itself is no conflict


def test_protected_groups_need_the_admins_scope() -> None:
    body = {"users": [{"name": "ann", "groups": ["docker-privileged"]}]}
    assert "admin:groups" in (scopes.admin_reason("Roster", body) or "")
    assert scopes.admin_reason("Roster", {"users": [{"name": "ann", "groups": ["team"]}]}) is None


# --- the account records ----------------------------------------------------------------------


def test_enroll_approves_gives_passwords_once_and_then_writes_nothing(store: Store) -> None:
    accounts = Accounts(store)
    with store.session() as s:  # one who signed up before the roster, not approved yet
        s.execute(USERS_INFO.insert().values({**record("old", hash_one_time("x"), None), "is_authorized": False}))
    done = accounts.enroll("course", {"ann": "ann@example.org", "old": None}, one_time=True)
    # "old" is approved, but not with the password of whoever signed up under the name first
    assert (done.approved, sorted(done.passwords)) == (["old"], ["ann", "old"])
    assert accounts.enroll("course", {"ann": None, "old": None}, one_time=True).writes == 0
    assert accounts.unread_passwords("course") == ["ann", "old"]
    given = dict(accounts.read_passwords("course"))
    assert sorted(given) == ["ann", "old"] and len(given["ann"]) >= 20
    assert accounts.read_passwords("course") == [] and accounts.unread_passwords("course") == []
    assert accounts.must_change("ann") and accounts.must_change("old")
    with store.session() as s:
        squatter = s.scalar(select(USERS_INFO.c.password).where(USERS_INFO.c.username == "old"))
    assert not bcrypt.checkpw(b"x", bytes(squatter)) and bcrypt.checkpw(given["old"].encode(), bytes(squatter))
    with store.session() as s:
        s.execute(USERS_INFO.update().where(USERS_INFO.c.username == "ann").values(password=hash_one_time("own")))
    assert not accounts.must_change("ann")


def test_an_unused_one_time_password_expires_and_the_roster_makes_a_new_one(store: Store) -> None:
    accounts = Accounts(store)
    accounts.enroll("course", {"ann": None, "bob": None}, one_time=True, expire_days=7)
    first = dict(accounts.read_passwords("course"))
    later = datetime.now(UTC) + timedelta(days=8)
    assert not accounts.one_time_expired("ann", 7) and accounts.one_time_expired("ann", 7, later)
    with store.session() as s:  # bob set his own; both were made 8 days ago
        s.execute(USERS_INFO.update().where(USERS_INFO.c.username == "bob").values(password=hash_one_time("own")))
        s.execute(update(AccountRow).values(one_time_made=datetime.now(UTC) - timedelta(days=8)))
    assert accounts.one_time_expired("ann", 7) and not accounts.one_time_expired("bob", 7)
    assert accounts.enroll("course", {"ann": None, "bob": None}, one_time=True).writes == 0  # no expiry asked
    done = accounts.enroll("course", {"ann": None, "bob": None}, one_time=True, expire_days=7)
    assert done.passwords == ["ann"] and not accounts.one_time_expired("ann", 7)
    again = dict(accounts.read_passwords("course"))
    assert list(again) == ["ann"] and again["ann"] != first["ann"] and accounts.must_change("ann")


def test_removed_names_are_refused_and_unapproved(store: Store) -> None:
    accounts = Accounts(store)
    accounts.enroll("course", {"ann": None, "bob": None}, one_time=False)
    assert not accounts.pre_approved("bob")  # no such roster (any more): approved by hand
    store.apply(parsed(roster("course", [{"name": "ann"}, {"name": "bob"}])), "cli")
    assert accounts.pre_approved("bob") and not accounts.refused("bob")
    accounts.enroll("course", {"ann": None}, one_time=True)
    accounts.set_state(["ann"], REMOVED)
    assert accounts.refused("ann") and not accounts.pre_approved("ann")
    with store.session() as s:
        assert s.execute(USERS_INFO.select().where(USERS_INFO.c.username == "ann")).one().is_authorized is False
    assert accounts.enroll("course", {"ann": None}, one_time=True).released == ["ann"]


# --- the controller against a fake hub ----------------------------------------------------------


class FakeHub:
    """Users and groups; every call counted, writes apart."""

    def __init__(self) -> None:
        self.users: set[str] = set()
        self.groups: dict[str, set[str]] = {}
        self.calls: list[str] = []

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith("GET")]

    async def list_users(self) -> dict[str, dict[str, Any]]:
        self.calls.append("GET users")
        return {u: {"name": u, "servers": {}} for u in self.users}

    async def list_groups(self) -> dict[str, dict[str, Any]]:
        self.calls.append("GET groups")
        return {g: {"name": g, "users": sorted(m)} for g, m in self.groups.items()}

    async def create_users(self, names: list[str]) -> list[dict[str, Any]]:
        self.calls.append(f"POST users {len(names)}")
        self.users |= set(names)
        return []

    async def create_group(self, name: str) -> dict[str, Any]:
        self.calls.append(f"POST group {name}")
        self.groups[name] = set()
        return {}

    async def add_group_members(self, group: str, users: list[str]) -> dict[str, Any]:
        self.calls.append(f"POST {group} {len(users)}")
        self.groups[group] |= set(users)
        return {}

    async def remove_group_members(self, group: str, users: list[str]) -> dict[str, Any]:
        self.calls.append(f"DELETE {group} {len(users)}")
        self.groups[group] -= set(users)
        return {}


class FakeContext:
    def __init__(self, store: Store, hub: FakeHub) -> None:
        self.store, self.hub, self.events, self.woken = store, hub, [], []
        self.settings = SimpleNamespace(one_time_password_days=7.0)

    async def event(self, kind: str, name: str, reason: str, message: str, **kwargs: Any) -> None:
        self.events.append((reason, message))

    def enqueue(self, key: tuple[str, str]) -> None:
        self.woken.append(key)

    async def progress(self, kind: str, name: str, status: Any) -> None:
        pass


def test_controller_converges_in_a_few_calls_and_reapplies_without_writes(store: Store) -> None:
    users = [{"name": f"u{i:04d}", "groups": [f"g{i % 10}"]} for i in range(1000)]
    [res] = parsed(roster("course", users))
    store.apply([res], "cli")
    hub, obj = FakeHub(), store.get("Roster", "course")
    ctx = FakeContext(store, hub)
    status = asyncio.run(controller.reconcile(obj, ctx)).status  # type: ignore[arg-type]
    assert len(hub.users) == 1000 and all(len(m) == 100 for m in hub.groups.values())
    assert len(hub.calls) == 2 + 10 + 10 + 10  # two listings, a create per 100 users, per group: create and add
    assert status.phase == "Ready" and status.existing == 1000 and len(status.pending["passwordNotRead"]) == 1000
    person = next(p for p in status.people if p.name == "u0003")
    assert person.did == ["created", "one-time password made", "added to g3"]
    hub.calls.clear()
    store.write_status("Roster", "course", status.dump())
    obj = store.get("Roster", "course")
    again = asyncio.run(controller.reconcile(obj, ctx)).status  # type: ignore[arg-type]
    assert hub.writes() == [] and len(hub.calls) == 2 and again.last_change == status.last_change
