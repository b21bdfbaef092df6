"""GroupPolicy `dockerAccess` and `dockerQuota` (issue 25): the levels and their synonym,
who may write which, how quotas combine, and what the hash and the drift see."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.api.grouppolicy import DEFAULT_DOCKER_QUOTA, GroupPolicySpec
from reconciler.controllers.grouppolicy import SEED_SPEC
from reconciler.effective import NamedGroupPolicy, combine, policy_hash
from vocabulary import naming
from vocabulary.scopes import PROTECTED_GROUPS_SCOPE, WRITE_POLICIES, admin_reason

GIB = 1024**3


def spec(**fields: Any) -> GroupPolicySpec:
    return GroupPolicySpec.model_validate({"groups": ["team"], **fields})


def policy(name: str, groups: list[str], **fields: Any) -> NamedGroupPolicy:
    return NamedGroupPolicy(name, GroupPolicySpec.model_validate({"groups": groups, **fields}))


def error(**fields: Any) -> str:
    with pytest.raises(ValidationError) as e:
        GroupPolicySpec.model_validate(fields)
    return str(e.value)


def test_the_levels_and_the_synonym() -> None:
    assert spec().docker_level == "none"
    assert spec(dockerAccess="limited").docker_level == "limited"
    privileged = {"groups": [naming.PRIVILEGED_GROUP]}
    assert GroupPolicySpec.model_validate({**privileged, "dockerSocket": True}).docker_level == "privileged"
    assert GroupPolicySpec.model_validate({**privileged, "dockerAccess": "privileged"}).docker_level == "privileged"
    both = {**privileged, "dockerAccess": "privileged", "dockerSocket": True}
    assert GroupPolicySpec.model_validate(both).docker_level == "privileged"  # agreeing: fine
    assert "dockerAccess" in error(groups=["team"], dockerAccess="root")


def test_both_spellings_disagreeing_are_refused_naming_the_field() -> None:
    message = error(groups=["team"], dockerAccess="limited", dockerSocket=True)
    assert "dockerSocket" in message and "disagrees with dockerAccess: limited" in message
    message = error(groups=[naming.PRIVILEGED_GROUP], dockerAccess="privileged", dockerSocket=False)
    assert "disagrees" in message
    assert spec(dockerAccess="limited", dockerSocket=False).docker_level == "limited"  # agrees: no socket


def test_a_stored_spec_validates_again() -> None:
    """The store keeps the spec as dumped (every field); it must validate to the same."""
    for fields in ({"dockerAccess": "limited"}, {"dockerQuota": {"containers": 3}}, {}):
        first = spec(**fields)
        again = GroupPolicySpec.model_validate(first.model_dump(mode="json", by_alias=True))
        assert again == first
    seeded = GroupPolicySpec.model_validate(SEED_SPEC)
    assert GroupPolicySpec.model_validate(seeded.model_dump(mode="json", by_alias=True)).docker_level == "privileged"


def test_privileged_only_for_docker_privileged_limited_for_any_group() -> None:
    message = error(groups=["ml-team"], dockerAccess="privileged")
    assert "dockerAccess" in message and "ml-team is not a protected group" in message
    assert "platform-operators is protected" in error(groups=["platform-operators"], dockerAccess="privileged")
    assert spec(dockerAccess="limited").docker_level == "limited"
    assert GroupPolicySpec.model_validate({"groups": ["platform-operators"], "dockerAccess": "limited"})


def test_privileged_needs_admin_groups_limited_needs_only_write_policies() -> None:
    assert admin_reason("GroupPolicy", {"groups": ["team"], "dockerAccess": "limited"}) is None
    reason = admin_reason("GroupPolicy", {"groups": ["team"], "dockerAccess": "privileged"})
    assert reason and PROTECTED_GROUPS_SCOPE in reason and WRITE_POLICIES in reason
    assert admin_reason("GroupPolicy", {"groups": ["team"], "dockerSocket": True})
    assert admin_reason("GroupPolicy", {"groups": [naming.PRIVILEGED_GROUP], "dockerAccess": "limited"})
    assert admin_reason("GroupPolicy", {"groups": "not a list"}) is None  # validation says what is wrong


def test_quota_fields_are_checked() -> None:
    assert "at least 6M" in error(groups=["t"], dockerQuota={"memory": "1M"})
    assert "such as 512M" in error(groups=["t"], dockerQuota={"totalMemory": "lots"})
    assert "containers" in error(groups=["t"], dockerQuota={"containers": 0})
    assert "cpus" in error(groups=["t"], dockerQuota={"cpus": 0})
    assert "Extra inputs are not permitted" in error(groups=["t"], dockerQuota={"gpus": 1})
    # A bound above its total (with the defaults filled in) could never be used.
    assert "memory is above totalMemory (8G > 4G)" in error(groups=["t"], dockerQuota={"memory": "8G"})
    assert "defaultCpus is above cpus (2 > 1)" in error(groups=["t"], dockerQuota={"defaultCpus": 2})
    ok = spec(dockerQuota={"memory": "8G", "totalMemory": "16G", "buildContext": "200M"}).docker_quota
    assert ok is not None and ok.resolved()["build_context"] == 200 * 1024**2


def test_limited_without_a_quota_gets_the_defaults() -> None:
    eff = combine(["team"], [policy("t", ["team"], dockerAccess="limited")])
    assert eff.docker_access == "limited" and not eff.docker_socket
    q = eff.docker_quota
    assert q is not None
    assert (q.max_containers, q.memory, q.cpus) == (5, 2 * GIB, 1.0)
    assert (q.total_memory, q.total_cpus, q.build_context) == (4 * GIB, 2.0, GIB)
    # The defaults fit together: five containers at the default limits are within the totals.
    assert 5 * q.default_memory <= q.total_memory and 5 * q.default_cpus <= q.total_cpus + 1e-9
    assert DEFAULT_DOCKER_QUOTA["containers"] == 5


def test_quotas_combine_most_generous_field_by_field() -> None:
    policies = [
        policy("small", ["a"], dockerAccess="limited", dockerQuota={"containers": 10, "memory": "1G"}),
        policy("big", ["b"], dockerQuota={"memory": "3G", "totalMemory": "12G", "cpus": 2, "totalCpus": 4}),
        policy("none", ["c"], dockerAccess="none"),
    ]
    only_a = combine(["a"], policies).docker_quota
    assert only_a is not None and (only_a.max_containers, only_a.memory) == (10, GIB)
    both = combine(["a", "b", "c"], policies).docker_quota
    assert both is not None
    assert (both.max_containers, both.memory, both.total_memory) == (10, 3 * GIB, 12 * GIB)
    assert (both.cpus, both.total_cpus) == (2, 4)
    # A quota alone gives no access: only a level does.
    assert combine(["b"], policies).docker_access == "none" and combine(["b"], policies).docker_quota is None


def test_the_most_access_wins_and_privileged_is_never_also_limited() -> None:
    policies = [
        policy("team", ["team"], dockerAccess="limited"),
        policy(naming.PRIVILEGED_GROUP, [naming.PRIVILEGED_GROUP], dockerAccess="privileged"),
    ]
    eff = combine(["team", naming.PRIVILEGED_GROUP], policies)
    assert eff.docker_access == "privileged" and eff.docker_socket and eff.docker_quota is None
    assert combine(["team"], policies).docker_access == "limited"
    suspended = [policy("team", ["team"], dockerAccess="limited", suspend=True)]
    assert combine(["team"], suspended).docker_access == "none"


def test_the_hash_keeps_the_socket_and_sees_limited_but_not_the_quota() -> None:
    old = combine([naming.PRIVILEGED_GROUP], [policy("p", [naming.PRIVILEGED_GROUP], dockerSocket=True)])
    new = combine([naming.PRIVILEGED_GROUP], [policy("p", [naming.PRIVILEGED_GROUP], dockerAccess="privileged")])
    assert policy_hash(old) == policy_hash(new)  # the seed's new spelling restarts nobody
    assert "dockerAccess" not in new.as_dict() and new.as_dict()["dockerSocket"] is True
    none = combine(["team"], [policy("t", ["team"])])
    limited = combine(["team"], [policy("t", ["team"], dockerAccess="limited")])
    bigger = combine(["team"], [policy("t", ["team"], dockerAccess="limited", dockerQuota={"containers": 9})])
    assert limited.as_dict()["dockerAccess"] == "limited" and "dockerAccess" not in none.as_dict()
    assert policy_hash(limited) != policy_hash(none)  # the mount comes at a start: drift
    assert policy_hash(limited) == policy_hash(bigger)  # the proxy applies a quota at once: no drift
