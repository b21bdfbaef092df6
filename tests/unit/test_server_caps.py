"""GroupPolicy maxActiveServers: how the caps of a user's groups combine, and the refusal."""

from __future__ import annotations

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
