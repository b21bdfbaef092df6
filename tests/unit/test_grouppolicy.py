"""GroupPolicy: the spec's rules, how policies combine, drift, and the rollout's order."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from hub_config import policies as hub_policies
from reconciler.api import parse_resource
from reconciler.api.grouppolicy import GroupPolicySpec, memory_bytes
from reconciler.api.rolloutrestart import RolloutRestartSpec, RolloutRestartStatus, RolloutServer
from reconciler.api.serverdrift import ServerState
from reconciler.controllers.grouppolicy import SEED_NAME, SEED_SPEC
from reconciler.controllers.rolloutrestart import is_active, next_batch
from reconciler.controllers.serverdrift import survey
from reconciler.effective import NamedGroupPolicy, combine, differences, image_problem, policy_hash
from reconciler.in_force import socket_granted
from reconciler.manifests import ManifestError, parse_manifests
from reconciler.privileged_survey import survey as privileged_survey
from reconciler.store import ForbiddenError, Store
from vocabulary import naming
from vocabulary.scopes import admin_reason

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def policy(name: str, **spec: object) -> NamedGroupPolicy:
    return NamedGroupPolicy(name, GroupPolicySpec.model_validate(spec))


ML = policy(
    "ml",
    groups=["ml"],
    priority=10,
    resources={"memory": "8G", "cpus": 2},
    environment={"MLFLOW_TRACKING_URI": "http://mlflow:5000", "TEAM": "ml"},
    images=["jupyterhub-ds/lab:ds", "jupyterhub-ds/lab:minimal"],
    volumes={"ml-datasets": {"mount": "/mnt/datasets", "readOnly": True}},
)
BIO = policy(
    "bio",
    groups=["bio"],
    priority=5,
    resources={"memory": "16G", "cpus": 1},
    environment={"TEAM": "bio", "GENOMES": "/mnt/genomes"},
    images=["bio/lab:1"],
    volumes={"genomes": {"mount": "/mnt/genomes"}},
)


def test_the_issue_example_parses() -> None:
    doc = {
        "apiVersion": "jupyterhub-ds/v1",
        "kind": "GroupPolicy",
        "metadata": {"name": "ml-team"},
        "spec": {
            "groups": ["ml-team"],
            "priority": 10,
            "resources": {"memory": "8G", "cpus": 2},
            "gpus": {"count": 1},
            "environment": {"MLFLOW_TRACKING_URI": "http://mlflow:5000"},
            "images": ["jupyterhub-ds/lab:ds", "jupyterhub-ds/lab:minimal"],
            "volumes": {"ml-datasets": {"mount": "/mnt/datasets", "readOnly": True}},
        },
    }
    assert parse_resource(doc).spec.volumes["ml-datasets"].read_only is True


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"groups": ["a"], "environment": {"JUPYTERHUB_API_TOKEN": "x"}}, "reserved"),
        ({"groups": ["a"], "environment": {"jpy_api_token": "x"}}, "reserved"),
        ({"groups": ["a"], "environment": {"1BAD": "x"}}, "not an environment variable name"),
        ({"groups": ["a"], "resources": {"memory": "lots"}}, "must be a size"),
        ({"groups": ["a"], "resources": {"memory": "1M"}}, "at least 6M"),
        ({"groups": ["a"], "resources": {"cpus": 0}}, "greater than 0"),
        ({"groups": ["a"], "gpus": {}}, "exactly one of count or ids"),
        ({"groups": ["a"], "volumes": {"v": {"mount": "relative"}}}, "absolute path"),
        ({"groups": ["a"], "volumes": {"/etc": {"mount": "/x"}}}, "not a Docker volume name"),
        ({"groups": []}, "at least one group"),
        ({"groups": ["a"], "dockerSocket": True}, "a is not a protected group.*would escape admin:groups"),
        ({"groups": ["docker-privileged", "ml"], "dockerSocket": True}, "ml is not a protected group"),
        ({"groups": ["platform-operators"], "dockerSocket": True}, "the privileged-access watch takes the socket"),
        ({"groups": ["docker-privileged"], "dockerSocket": "yes"}, "valid boolean"),
    ],
)
def test_spec_refuses(spec: dict, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        GroupPolicySpec.model_validate(spec)


def test_memory_units() -> None:
    assert memory_bytes("8G") == 8 * 1024**3
    assert memory_bytes("512m") == 512 * 1024**2
    assert memory_bytes("1.5g") == int(1.5 * 1024**3)
    assert memory_bytes(1000) == 1000


def test_one_group_gets_its_policy() -> None:
    eff = combine(["ml"], [ML, BIO])
    assert eff.policies == ["ml"]
    assert (eff.memory, eff.cpus) == (8 * 1024**3, 2)
    assert eff.default_image == "jupyterhub-ds/lab:ds"
    assert eff.volumes == {"ml-datasets": {"mount": "/mnt/datasets", "readOnly": True}}


def test_two_groups_combine_by_the_table() -> None:
    eff = combine(["bio", "ml"], [BIO, ML])
    assert eff.policies == ["ml", "bio"]  # priority order
    assert eff.memory == 16 * 1024**3  # the largest, from bio
    assert eff.cpus == 2  # the largest, from ml
    assert eff.images == ["jupyterhub-ds/lab:ds", "jupyterhub-ds/lab:minimal", "bio/lab:1"]  # union
    assert set(eff.volumes or {}) == {"ml-datasets", "genomes"}  # union
    assert eff.environment == {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "TEAM": "ml", "GENOMES": "/mnt/genomes"}


def test_order_of_listing_does_not_matter_and_ties_go_by_name() -> None:
    a = policy("a", groups=["g"], environment={"X": "a"})
    b = policy("b", groups=["g"], environment={"X": "b"})
    assert combine(["g"], [b, a]).environment == {"X": "a"}
    assert policy_hash(combine(["g"], [a, b])) == policy_hash(combine(["g"], [b, a]))


def test_nobody_else_and_suspended() -> None:
    assert combine(["other"], [ML]).as_dict() == {}
    off = policy("off", groups=["ml"], suspend=True, resources={"memory": "64G"})
    assert combine(["ml"], [ML, off]).memory == 8 * 1024**3


def test_images_allowed() -> None:
    eff = combine(["ml"], [ML])
    assert image_problem("jupyterhub-ds/lab:minimal", eff, "default:1") is None
    assert "not allowed" in (image_problem("evil/miner:latest", eff, "default:1") or "")
    # Without a policy only the platform's image may be started.
    assert image_problem("default:1", combine([], [ML]), "default:1") is None
    assert image_problem("jupyterhub-ds/lab:ds", combine([], [ML]), "default:1") is not None


def test_hash_follows_the_effective_policy_only() -> None:
    edited = policy("ml", **{**ML.spec.model_dump(by_alias=True), "resources": {"memory": "4G", "cpus": 2}})
    assert policy_hash(combine(["ml"], [ML])) != policy_hash(combine(["ml"], [edited]))
    assert policy_hash(combine(["bio"], [ML, BIO])) == policy_hash(combine(["bio"], [edited, BIO]))


def test_differences_name_each_field() -> None:
    was = combine(["ml"], [ML]).as_dict()
    now = combine(["ml", "bio"], [ML, BIO]).as_dict()
    diff = differences(was, now)
    assert f"memory: {8 * 1024**3} -> {16 * 1024**3}" in diff
    assert "environment.GENOMES: added" in diff
    assert "volumes.genomes: added" in diff
    assert differences(was, was) == []


def container(user: str, eff_groups: list[str], policies: list, image_id: str = "sha256:aaa") -> dict:
    eff = combine(eff_groups, policies)
    labels = {
        naming.LABEL_USER: user,
        naming.LABEL_SERVER: "",
        naming.LABEL_POLICY_HASH: policy_hash(eff),
        naming.LABEL_POLICY: json.dumps(eff.as_dict()),
        naming.LABEL_IMAGE: "lab:1",
        naming.LABEL_IMAGE_ID: image_id,
    }
    return {"Names": [f"/c-{user}"], "Labels": labels, "Image": "lab:1"}


def test_survey_marks_exactly_the_affected() -> None:
    edited = policy("ml", groups=["ml"], priority=10, resources={"memory": "4G"})
    containers = [container("ann", ["ml"], [ML]), container("bob", ["bio"], [BIO]), container("cat", [], [ML])]
    groups = {"ann": ["ml"], "bob": ["bio"], "cat": []}
    rows = {r.user: r for r in survey(containers, groups, [edited, BIO], {"lab:1": "sha256:aaa"}, {}, NOW)}
    assert [u for u, r in rows.items() if r.drifted] == ["ann"]
    assert any(d.startswith("memory:") for d in rows["ann"].difference)
    assert rows["ann"].since == NOW


def test_survey_sees_membership_and_rebuilt_tag() -> None:
    containers = [container("ann", ["ml"], [ML])]
    rows = survey(containers, {"ann": []}, [ML], {"lab:1": "sha256:aaa"}, {}, NOW)
    assert rows[0].drifted and rows[0].policies == []
    rows = survey(containers, {"ann": ["ml"]}, [ML], {"lab:1": "sha256:bbb"}, {}, NOW)
    assert rows[0].drifted and rows[0].difference == ["image lab:1: rebuilt (aaa -> bbb)"]
    before = {"c-ann": ServerState(user="ann", container="c-ann", drifted=True, since=NOW - timedelta(hours=1))}
    assert (
        survey(containers, {"ann": ["ml"]}, [ML], {"lab:1": "sha256:bbb"}, before, NOW)[0].since
        == before["c-ann"].since
    )
    assert not survey(containers, {"ann": ["ml"]}, [ML], {"lab:1": "sha256:aaa"}, {}, NOW)[0].drifted
    assert survey(containers, {}, [ML], {}, {}, NOW) == []  # not an active hub server


def test_rollout_selector_is_exactly_one() -> None:
    RolloutRestartSpec.model_validate({"selector": {"drifted": True}})
    for bad in ({}, {"drifted": True, "all": True}, {"drifted": False}):
        with pytest.raises(ValidationError, match="exactly one"):
            RolloutRestartSpec.model_validate({"selector": bad})


def test_rollout_batches_and_puts_the_active_last() -> None:
    spec = RolloutRestartSpec.model_validate(
        {"selector": {"all": True}, "maxUnavailable": 2, "skipActiveWithin": "10m"}
    )
    status = RolloutRestartStatus(servers=[RolloutServer(user=u) for u in ("a", "b", "c", "d")])
    status.servers[0].state = "Restarted"
    running = {(u, ""): {"last_activity": (NOW - timedelta(hours=1)).isoformat()} for u in "abcd"}
    running[("b", "")] = {"last_activity": (NOW - timedelta(minutes=1)).isoformat()}
    batch, busy = next_batch(status, spec, running, NOW)
    assert [t.user for t in batch] == ["c", "d"] and [t.user for t in busy] == ["b"]
    status.servers[3].step = "starting"  # a resumed restart goes first
    batch, _ = next_batch(status, spec, running, NOW)
    assert [t.user for t in batch] == ["d", "c"]


def test_our_own_notice_is_not_activity() -> None:
    t = RolloutServer(user="a", warned_at=NOW - timedelta(seconds=10), notice_done_at=NOW - timedelta(seconds=9))
    ours = {"last_activity": (NOW - timedelta(seconds=9)).isoformat()}
    theirs = {"last_activity": (NOW - timedelta(seconds=2)).isoformat()}
    assert not is_active(ours, 600, NOW, t)
    assert is_active(theirs, 600, NOW, t)
    assert not is_active(theirs, 0, NOW, t)  # skipActiveWithin 0: nobody counts as active


def test_spawn_form_only_when_there_is_a_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    spawner = SimpleNamespace(user=None, settings=SimpleNamespace(notebook_image="default:1"))
    for eff, options in ((combine(["ml"], [ML]), 2), (combine([], [ML]), 0)):

        async def effective(_user: object, eff: object = eff) -> object:
            return eff

        monkeypatch.setattr(hub_policies, "effective_for", effective)
        form = asyncio.run(hub_policies.image_form(spawner))
        assert form.count("<option") == options
        if options:
            assert '<option value="jupyterhub-ds/lab:ds" selected>' in form  # the default first


# --- the Docker socket as a policy field ------------------------------------------------------

SOCKET = policy("docker-privileged", groups=["docker-privileged"], dockerSocket=True)


def test_socket_only_for_docker_privileged_with_file_and_line() -> None:
    assert SOCKET.spec.docker_socket is True
    assert GroupPolicySpec.model_validate({"groups": ["ml"], "dockerSocket": False}).docker_socket is False
    text = "apiVersion: jupyterhub-ds/v1\nkind: GroupPolicy\nmetadata: {name: ml}\nspec:\n  groups: [ml]\n"
    with pytest.raises(ManifestError) as e:
        parse_manifests(text + "  dockerSocket: true\n", "team.yaml")
    (issue,) = e.value.issues
    assert (issue.line, issue.path) == (6, "spec.dockerSocket"), issue
    assert str(issue).startswith(
        "team.yaml:6: spec.dockerSocket: only docker-privileged may be given the Docker socket"
    )
    assert "custom:jupyterhub-ds:write:groupmemberships alone" in str(issue)


def test_socket_combines_as_any_and_changes_the_hash() -> None:
    assert combine(["docker-privileged"], [SOCKET, ML]).docker_socket is True
    assert combine(["docker-privileged", "ml"], [SOCKET, ML]).docker_socket is True  # any policy
    assert combine(["ml"], [SOCKET, ML]).docker_socket is False
    off = policy("docker-privileged", groups=["docker-privileged"], dockerSocket=True, suspend=True)
    assert combine(["docker-privileged"], [off]).docker_socket is False
    mine = combine(["docker-privileged"], [SOCKET])
    assert mine.as_dict() == {"policies": ["docker-privileged"], "dockerSocket": True}
    # Without the socket the canonical form has no such field: hashes from before are unchanged.
    assert "dockerSocket" not in combine(["ml"], [ML]).as_dict()
    assert policy_hash(combine(["ml"], [ML])) == policy_hash(combine(["ml"], [ML, SOCKET]))
    without = policy("docker-privileged", groups=["docker-privileged"])
    assert policy_hash(mine) != policy_hash(combine(["docker-privileged"], [without]))
    assert "dockerSocket: true -> null" in differences(
        mine.as_dict(), combine(["docker-privileged"], [without]).as_dict()
    )


def test_the_seed_is_the_socket_policy_and_is_applied_once(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path}/seed.db")
    assert store.seed("GroupPolicy", SEED_NAME, SEED_SPEC) == "created"
    assert store.seed("GroupPolicy", SEED_NAME, SEED_SPEC) == "unchanged"
    stored = store.get("GroupPolicy", "docker-privileged")
    assert stored is not None and stored.owner == "settings"
    assert socket_granted(store) is True
    store.apply([parse_resource({**_doc(stored), "spec": {**SEED_SPEC, "suspend": True}})], "api")
    assert socket_granted(store) is False  # suspended: members start without it
    assert store.seed("GroupPolicy", SEED_NAME, SEED_SPEC) == "configured"  # put back at the next start
    assert socket_granted(store) is True
    store.close()


def _doc(stored) -> dict:
    return {"apiVersion": "jupyterhub-ds/v1", "kind": stored.kind, "metadata": {"name": stored.name}}


def test_a_member_without_the_socket_is_drift_only_while_a_policy_gives_it() -> None:
    c = {"Id": "c1", "Names": ["/lab-pia"], "Labels": {naming.LABEL_USER: "pia"}, "Mounts": []}
    (row,) = privileged_survey([c], {"pia"}, {("pia", "")}, "/var/run/docker.sock")
    assert row.drift == "membership-without-socket"
    (row,) = privileged_survey([c], {"pia"}, {("pia", "")}, "/var/run/docker.sock", granted=False)
    assert row.drift is None  # no restart loop when the seed is suspended
    with_socket = {**c, "Mounts": [{"Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock"}]}
    (row,) = privileged_survey([with_socket], set(), {("pia", "")}, "/var/run/docker.sock", granted=False)
    assert row.drift == "socket-without-membership"  # revocation follows membership, policies or not


# --- what runs beside the socket is decided by admins only (issue 22, item 1) -----------------

EVIL = policy(
    "evil",
    groups=["ml"],
    priority=1000,  # a priority cannot buy its way in
    environment={"LD_PRELOAD": "/tmp/x.so"},
    images=["evil/image"],
    volumes={"loot": {"mount": "/loot"}},
    resources={"memory": "1G"},
)


def test_a_server_with_the_socket_takes_images_environment_volumes_from_socket_groups_only() -> None:
    extra = policy("priv-extra", groups=["docker-privileged", "ml"], environment={"SAFE": "1"}, images=["ok/image"])
    member = combine(["docker-privileged", "ml"], [SOCKET, EVIL, extra])
    assert member.docker_socket and member.withheld == ["evil"]
    assert member.environment == {"SAFE": "1"} and member.images == ["ok/image"] and member.volumes is None
    assert member.memory == 1024**3  # limits still combine: they run nothing
    assert member.as_dict()["withheld"] == ["evil"]
    # Without the socket (not a member, or the built-in policy suspended), everything applies.
    other = combine(["ml"], [SOCKET, EVIL, extra])
    assert other.environment == {"LD_PRELOAD": "/tmp/x.so", "SAFE": "1"} and other.withheld is None
    off = policy("docker-privileged", groups=["docker-privileged"], dockerSocket=True, suspend=True)
    assert combine(["docker-privileged", "ml"], [off, EVIL]).images == ["evil/image"]


def test_admin_reason_names_the_scope_and_why() -> None:
    assert "admin:groups" in admin_reason("GroupMembership", {"group": "docker-privileged"})
    assert "hub admins" in admin_reason("GroupMembership", {"group": "platform-operators"})
    reason = admin_reason("GroupPolicy", {"groups": ["ml", "docker-privileged"]})
    assert "needs admin:groups" in reason and "Docker socket" in reason
    assert admin_reason("GroupPolicy", {"groups": ["ml"], "environment": {"LD_PRELOAD": "x"}}) is None
    assert admin_reason("GroupMembership", {"group": "ml"}) is None
    assert admin_reason("Broadcast", {"message": "hi"}) is None


def test_replacing_or_pruning_what_needs_admin_is_refused_atomically(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.sqlite")
    text = (
        "apiVersion: jupyterhub-ds/v1\nkind: GroupPolicy\nmetadata: {name: NAME}\n"
        "spec: {groups: [GROUP], environment: {A: '1'}}\n"
    )

    def doc(name: str, group: str) -> list:
        return parse_manifests(text.replace("NAME", name).replace("GROUP", group), "t.yaml")

    def operator(kind: str, name: str, spec: dict) -> str | None:
        return admin_reason(kind, spec)

    try:
        store.apply(doc("priv", "docker-privileged") + doc("team", "ml"), "cli", sources=None)
        with pytest.raises(ForbiddenError) as e:  # re-pointing the admin's policy at another group
            store.apply(doc("priv", "ml"), "cli", authorize=operator)
        assert e.value.problems[0].startswith("grouppolicy/priv: not replaced: Only hub admins")
        with pytest.raises(ForbiddenError) as e:  # pruning it
            store.apply(doc("team", "ml"), "cli", prune=True, authorize=operator)
        assert "grouppolicy/priv: not pruned" in e.value.problems[0]
        assert {r.name for r in store.list("GroupPolicy")} == {"priv", "team"}  # nothing applied
        assert store.get("GroupPolicy", "priv").spec["groups"] == ["docker-privileged"]
        results = store.apply(doc("team", "ml"), "cli", prune=True, authorize=lambda *a: None)  # an admin
        assert ("priv", "pruned") in {(r.name, r.action) for r in results}
    finally:
        store.close()
