"""GroupPolicy maxActiveServers: how the caps of a user's groups combine, and the refusal."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from reconciler.api.grouppolicy import GroupPolicySpec
from reconciler.effective import NamedGroupPolicy, combine, policy_hash
from reconciler.server_caps import GroupCap, cap_refusal, group_caps


def policy(name: str, **spec: object) -> NamedGroupPolicy:
    return NamedGroupPolicy(name, GroupPolicySpec.model_validate(spec))


def test_each_capped_group_of_the_user_counts_with_its_smallest_cap() -> None:
    policies = [
        policy("course", groups=["course", "ta"], maxActiveServers=30),
        policy("course-tight", groups=["course"], maxActiveServers=20, priority=-5),
        policy("ml", groups=["ml"], resources={"memory": "8G"}),  # no cap: caps nothing
        policy("other", groups=["other"], maxActiveServers=1),  # not the user's group
        policy("paused", groups=["ml"], maxActiveServers=0, suspend=True),  # suspended: caps nothing
    ]
    assert group_caps(["course", "ml", "ta"], policies) == [
        GroupCap("course", 20, "course-tight"),
        GroupCap("ta", 30, "course"),
    ]
    assert group_caps(["ml"], policies) == []


def test_refused_when_any_of_the_groups_is_full_an_uncapped_group_lifts_nothing() -> None:
    caps = [GroupCap("big", 10, "p-big"), GroupCap("small", 2, "p-small")]
    assert cap_refusal(caps, {"big": ["a", "b"], "small": ["c"]}) is None
    message = cap_refusal(caps, {"big": ["a"], "small": ["c", "d/gpu"]})
    assert message == (
        "Your group small may run 2 servers at once (maxActiveServers: 2 in GroupPolicy p-small), and 2 are "
        "running: c, d/gpu. A slot frees when one of them stops their server; an admin may stop one or raise the "
        "limit."
    )


def test_the_refusal_names_a_few_holders_and_counts_the_rest() -> None:
    holders = [f"u{n:02d}" for n in range(8)]
    message = cap_refusal([GroupCap("g", 8, "p")], {"g": holders}) or ""
    assert "running: u00, u01, u02, u03, u04 and 3 more." in message
    one = cap_refusal([GroupCap("g", 1, "p")], {"g": ["amy"]}) or ""
    assert "may run 1 server at once" in one and "and 1 is running: amy." in one


def test_a_cap_of_zero_refuses_every_start() -> None:
    message = cap_refusal([GroupCap("frozen", 0, "freeze")], {}) or ""
    assert message.startswith("Your group frozen may not run servers (maxActiveServers: 0 in GroupPolicy freeze)")


def test_a_cap_is_no_part_of_the_effective_policy_so_changing_it_drifts_nothing() -> None:
    without = combine(["g"], [policy("p", groups=["g"], resources={"cpus": 1})])
    capped = combine(["g"], [policy("p", groups=["g"], resources={"cpus": 1}, maxActiveServers=3)])
    assert policy_hash(without) == policy_hash(capped)


@pytest.mark.parametrize("bad", [-1, "many", 1.5, 100_001])
def test_max_active_servers_is_a_count(bad: object) -> None:
    with pytest.raises(ValidationError):
        GroupPolicySpec.model_validate({"groups": ["g"], "maxActiveServers": bad})


# --- the hub's count (hub_config/server_caps.py) on a JupyterHub database in memory ---------


class Spawner:
    """What the count reads of a JupyterHub spawner (and its user wrapper's `settings`, `db`)."""

    def __init__(self, user: object, pending: str | None = None, ready: bool = False) -> None:
        self.user, self.pending, self.ready = user, pending, ready


def hub_with_group(members: list[str]) -> tuple[object, dict[int, object]]:
    from jupyterhub import orm

    db = orm.new_session_factory("sqlite://")()
    group = orm.Group(name="course")
    db.add(group)
    users: dict[int, object] = {}
    for name in members:
        orm_user = orm.User(name=name)
        db.add(orm_user)
        group.users.append(orm_user)
        db.commit()
        users[orm_user.id] = SimpleNamespace(name=name, spawners={}, settings={"users": users}, db=db)
    return db, users


def test_two_members_starting_together_one_admitted_one_refused() -> None:
    from hub_config import server_caps
    from hub_config.refusals import SpawnRefused

    _, users = hub_with_group(["amy", "ben"])
    amy, ben = users.values()
    amy.spawners[""] = a = Spawner(amy, pending="spawn")
    ben.spawners[""] = b = Spawner(ben, pending="spawn")
    caps = [GroupCap("course", 1, "course")]
    server_caps.admit(a, caps)  # b's pending start holds no slot yet: a is admitted
    with pytest.raises(SpawnRefused, match="1 is running: amy") as refused:
        server_caps.admit(b, caps)  # a's admitted start holds it: b is refused, not both
    assert (refused.value.status_code, refused.value.reason) == (429, "group-server-limit")
    a.pending, a.ready = None, True  # amy's server runs
    with pytest.raises(SpawnRefused):
        server_caps.admit(b, caps)
    server_caps.release(a)
    a.pending, a.ready = "stop", False  # stopping still holds the slot
    with pytest.raises(SpawnRefused):
        server_caps.admit(b, caps)
    a.pending = None  # stopped
    server_caps.admit(b, caps)
    a.pending = "spawn"  # amy starts again: refused while ben's start holds the slot
    with pytest.raises(SpawnRefused, match="running: ben"):
        server_caps.admit(a, caps)
