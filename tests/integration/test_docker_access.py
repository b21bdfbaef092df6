"""The hub's side of `limited` Docker access (issue 25) on a platform of its own: what each
level puts into a real lab, and the DockerAccess watch following membership.

`da-lim` is in `da-team`, whose GroupPolicy says `dockerAccess: limited`; `da-non` is in no
group; `da-pia` is in `docker-privileged` (the built-in policy, `privileged`).

1. da-lim's lab has its proxy folder mounted read-only at /run/jhds-docker, DOCKER_HOST
   pointing at it, the docker CLI, DOCKER_BUILDKIT=0, and no engine socket; da-non's has
   neither; da-pia's has the engine socket and no proxy folder;
2. `hubctl get effective` shows the level and the combined quota; a `privileged` policy of
   an unprotected group is refused at apply, naming `spec.dockerAccess`;
3. the DockerAccess watch reports da-lim `limited` (`hubctl get dockeraccess`, the
   Privileged page); removed from the group through its GroupMembership, da-lim is
   reported `none` within seconds, without a resync.

The real docker CLI through the real proxy inside a lab is tested once the proxy is in.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.harness import Hub, wait_for
from tests.helpers import apply, apply_manifests, manifest
from vocabulary import naming

SOCKET = "/var/run/docker.sock"
USERS = ("da-lim", "da-non", "da-pia")
MEMBERSHIP = {"group": "da-team", "members": ["da-lim"], "prune": True}


def inspect(engine: docker.DockerClient, hub: Hub, user: str) -> dict:
    return engine.api.inspect_container(hub.container_name(user))


def mounts(a: dict) -> dict[str, dict]:
    return {m["Destination"]: m for m in a["Mounts"]}


def env_of(a: dict) -> dict[str, str]:
    return dict(e.split("=", 1) for e in a["Config"]["Env"])


def limited(hub: Hub) -> dict[str, dict]:
    shown = hub.hubctl("get", "dockeraccess", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    return {r["user"]: r for r in json.loads(shown.stdout)}


@pytest.fixture(scope="module")
def da(own_platforms) -> Iterator[Hub]:
    hub = own_platforms.platform("dockeraccess", {}, users=USERS)
    apply_manifests(
        hub,
        manifest("GroupPolicy", "da-team", {"groups": ["da-team"], "dockerAccess": "limited"}),
        manifest("GroupMembership", "da-team", MEMBERSHIP),
    )
    assert hub.api("POST", "groups/docker-privileged/users", json={"users": ["da-pia"]}).status_code == 200
    wait_for(lambda: "da-lim" in hub.api("GET", "groups/da-team").json().get("users", []), 30, "da-lim in da-team")
    try:
        for user in USERS:
            hub.start_server(user)
        yield hub
    finally:
        for user in USERS:
            hub.stop_server(user)


def test_each_level_gets_what_it_should_in_the_lab(da: Hub, engine: docker.DockerClient) -> None:
    lim, non, pia = (inspect(engine, da, u) for u in USERS)
    folder = mounts(lim)[naming.LAB_DOCKER_DIR]
    root = (da.state_dir / "docker-proxy").resolve()
    assert folder["Source"] == str(naming.docker_proxy_dir(root, "da-lim")) and folder["RW"] is False
    assert stat.S_IMODE(Path(folder["Source"]).stat().st_mode) == 0o711
    assert env_of(lim)["DOCKER_HOST"] == "unix:///run/jhds-docker/docker.sock"
    assert SOCKET not in mounts(lim) and lim["Config"]["Labels"][naming.LABEL_SOCKET] == "false"
    assert json.loads(lim["Config"]["Labels"][naming.LABEL_POLICY])["dockerAccess"] == "limited"
    # The image: the CLI, the classic builder, and the default socket path pointing at the proxy's.
    shown = da.exec(engine, "da-lim", "docker --version; echo $DOCKER_BUILDKIT; readlink /var/run/docker.sock")
    version, buildkit, link = shown.split()[2].rstrip(","), *shown.split()[-2:]
    assert version.startswith("20.10") and buildkit == "0" and link == "/run/jhds-docker/docker.sock", shown

    assert naming.LAB_DOCKER_DIR not in mounts(non) and SOCKET not in mounts(non)
    assert "DOCKER_HOST" not in env_of(non)

    assert mounts(pia)[SOCKET]["Source"] == SOCKET and naming.LAB_DOCKER_DIR not in mounts(pia)
    assert "DOCKER_HOST" not in env_of(pia) and pia["Config"]["Labels"][naming.LABEL_SOCKET] == "true"


def test_effective_shows_the_level_and_quota_and_privileged_is_refused(da: Hub) -> None:
    shown = da.hubctl("get", "effective", "da-lim", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    effective = json.loads(shown.stdout)
    assert effective["dockerAccess"] == "limited" and effective["dockerSocket"] is False
    assert effective["dockerQuota"]["containers"] == 5 and effective["dockerQuota"]["totalMemory"] == 4 * 1024**3
    assert json.loads(da.hubctl("get", "effective", "da-pia", "-o", "json").stdout)["dockerAccess"] == "privileged"
    assert json.loads(da.hubctl("get", "effective", "da-non", "-o", "json").stdout)["dockerAccess"] == "none"
    root = manifest("GroupPolicy", "da-root", {"groups": ["da-team"], "dockerAccess": "privileged"})
    r = da.api("POST", "manifests", data=root.encode())
    assert r.status_code in (403, 422), r.text
    assert "privileged" in r.text and da.api("GET", "resources/grouppolicy/da-root").status_code == 404


def test_the_watch_follows_membership(da: Hub) -> None:
    wait_for(lambda: limited(da).get("da-lim", {}).get("level") == "limited", 30, "da-lim reported limited")
    row = limited(da)["da-lim"]
    assert row["serverRunning"] and row["containers"] == 0 and row["quota"]["containers"] == 5
    assert set(limited(da)) == {"da-lim"}  # privileged and none are not limited
    page = da.api("GET", "privileged").json()
    assert [r["user"] for r in page["limited"]] == ["da-lim"]
    apply(da, "GroupMembership", "da-team", {**MEMBERSHIP, "members": []})
    # Woken by the membership change, not by a resync (every 30 s).
    wait_for(lambda: "da-lim" not in limited(da), 15, "da-lim no longer limited")
