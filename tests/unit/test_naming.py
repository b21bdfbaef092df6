"""One naming template for containers and volumes, shared by spawner and reconciler."""

from __future__ import annotations

import re

from vocabulary import naming

DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def test_plain_names_are_kept() -> None:
    assert naming.escape_name("alice") == "alice"
    assert naming.container_name("jupyterlab", "alice") == "jupyterlab-alice"
    assert naming.volume_name("jupyterlab-{username}_{volume}", "alice", "home") == "jupyterlab-alice_home"


def test_escaping_is_injective_and_docker_safe() -> None:
    names = ["a.b", "a-b", "a_b", "a@b", "A.b", "ab", "a-2eb", "eve.smith@example.org", "ünï"]
    escaped = [naming.escape_name(n) for n in names]
    # Distinct usernames never share a container or a volume.
    assert len(set(escaped)) == len(names)
    for e in escaped:
        assert DOCKER_NAME.match(f"x-{e}"), e
    assert naming.escape_name("eve.smith@example") == "eve-2esmith-40example"


def test_named_servers_get_their_own_container() -> None:
    assert naming.container_name("p", "bob", "gpu-box") == "p-bob--gpu-2dbox"
    assert naming.container_name("p", "bob", "") == "p-bob"
    # The separator cannot be produced by escaping, so user/server pairs never collide.
    assert "--" not in naming.escape_name("bob-")


def test_user_volume_names_for_every_key() -> None:
    names = naming.user_volume_names("jl-{username}_{volume}", "Carol.X", ["home", "workspace", "cache"])
    assert names == {
        "home": "jl--43arol-2e-58_home",
        "workspace": "jl--43arol-2e-58_workspace",
        "cache": "jl--43arol-2e-58_cache",
    }


def test_spawn_hash_ignores_key_order() -> None:
    a = naming.spawn_hash({"image": "x", "volumes": {"a": "/a", "b": "/b"}})
    b = naming.spawn_hash({"volumes": {"b": "/b", "a": "/a"}, "image": "x"})
    assert a == b and len(a) == 16
    assert naming.spawn_hash({"image": "y", "volumes": {"a": "/a", "b": "/b"}}) != a


def test_helper_and_task_names_never_collide_between_users_or_requests() -> None:
    long = "sw-collide-" + "a" * 60
    names = {
        naming.task_name("jhds-test-swarm", "backup", user, request, node)
        for user in (f"{long}-1", f"{long}-2", "b")
        for request in ("backup-nightly-" + "x" * 60 + "-1", "backup-nightly-" + "x" * 60 + "-2")
        for node in ("", "node-a")
    }
    assert len(names) == 12
    for name in names:
        assert len(name) <= naming.OBJECT_NAME_MAX and re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", name), name
    assert naming.task_name("p", "backup", "ann", "r") == naming.task_name("p", "backup", "ann", "r")  # a rerun
