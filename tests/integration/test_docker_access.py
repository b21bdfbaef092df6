"""The hub's side of `limited` Docker access (issue 25) on a platform of its own: what each
level puts into a real lab, and the DockerAccess watch following membership.

`da-lim` is in `da-team`, whose GroupPolicy says `dockerAccess: limited`; `da-non` is in no
group; `da-pia` is in `docker-privileged` (the built-in policy, `privileged`).

1. da-lim's lab has its proxy folder mounted read-only at /run/jhds-docker, DOCKER_HOST
   pointing at it, the docker CLI, DOCKER_BUILDKIT=0, and no engine socket; da-non's has
   neither; da-pia's has the engine socket and no proxy folder;
2. `hubctl get effective` shows the level and the combined quota; a `privileged` policy of
   an unprotected group is refused at apply, naming `spec.dockerAccess`;
3. inside da-lim's real lab, as the lab's user, the lab's own `docker` CLI through the
   platform's proxy: a container of its own runs and is all `docker ps` shows; another
   user's lab cannot be seen, inspected or stopped; each way out is refused naming the
   field; the sixth container answers 409 with the numbers; `logs -f` streams; `exec -it`
   is a terminal both ways; `docker build` and a run of the built image work; every create
   and refusal is an event on `DockerAccess/da-lim`;
4. the DockerAccess watch reports da-lim `limited` with its 5 containers (`hubctl get
   dockeraccess`, the Privileged page); when da-lim's server stops they stop and are removed
   after the grace, and the restarted lab starts from nothing; removed from the group
   through its GroupMembership, da-lim is reported `none` within seconds, without a resync,
   the lab's socket is gone and its containers are stopped.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.harness import Hub, wait_for
from tests.helpers import apply, apply_manifests, events, manifest
from vocabulary import naming

SOCKET = "/var/run/docker.sock"
# An image no platform setting names (the lab and helper images are the platform's: 404 to
# users); built with the `ds` lab, which `make test` builds.
IMAGE = "jupyterhub-ds/base-ds:bookworm"
USERS = ("da-lim", "da-non", "da-pia")
MEMBERSHIP = {"group": "da-team", "members": ["da-lim"], "prune": True}


def inspect(engine: docker.DockerClient, hub: Hub, user: str) -> dict:
    return engine.api.inspect_container(hub.container_name(user))


def mounts(a: dict) -> dict[str, dict]:
    return {m["Destination"]: m for m in a["Mounts"]}


def env_of(a: dict) -> dict[str, str]:
    return dict(e.split("=", 1) for e in a["Config"]["Env"])


def in_lab(engine: docker.DockerClient, hub: Hub, user: str, command: str, timeout: int = 120) -> tuple[int, str]:
    """A shell command as the lab's user in the user's lab (its environment: DOCKER_HOST);
    its exit code and output (stdout and stderr)."""
    container = engine.containers.get(hub.container_name(user))
    code, out = container.exec_run(["timeout", str(timeout), "sh", "-c", command], user="lab")
    return code, out.decode()


def limited(hub: Hub) -> dict[str, dict]:
    shown = hub.hubctl("get", "dockeraccess", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    return {r["user"]: r for r in json.loads(shown.stdout)}


@pytest.fixture(scope="module")
def da(own_platforms) -> Iterator[Hub]:
    # A short grace: a stopped server's containers are removed 5 s after they stopped.
    hub = own_platforms.platform("dockeraccess", {"DOCKER_LIMITED_GRACE_SECONDS": "5"}, users=USERS)
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


def test_the_labs_docker_cli_works_on_its_own_things_only(da: Hub, engine: docker.DockerClient) -> None:
    def docker_in_lab(args: str, ok: bool = True, timeout: int = 120) -> str:
        code, out = in_lab(engine, da, "da-lim", f"docker {args}", timeout)
        assert (code == 0) == ok, (args, code, out)
        return out

    wait_for(lambda: in_lab(engine, da, "da-lim", "docker version")[0] == 0, 30, "the proxy's socket in the lab")
    mine = docker_in_lab(f"run -d --network none --name da-web {IMAGE} sleep 600").strip()
    assert docker_in_lab("ps --format '{{.Names}}'").split() == ["da-web"]  # no lab, nobody else's
    assert docker_in_lab("ps -a -q --no-trunc").split() == [mine]
    for other in (da.container_name("da-non"), da.container_name("da-pia")):
        assert "No such" in docker_in_lab(f"inspect {other}", ok=False)
        assert "No such container" in docker_in_lab(f"stop {other}", ok=False)
        assert engine.containers.get(other).status == "running"
    for flags, field in [
        ("--privileged", "HostConfig.Privileged"),
        ("-v /:/host", "HostConfig.Binds"),
        ("--cap-add SYS_ADMIN", "HostConfig.CapAdd"),
        ("--pid host", "HostConfig.PidMode"),
        ("--network host", "HostConfig.NetworkMode"),
        ("--device /dev/mem", "HostConfig.Devices"),
        ("--security-opt seccomp=unconfined", "HostConfig.SecurityOpt"),
        ("--userns host", "HostConfig.UsernsMode"),
        ("--sysctl net.ipv4.ip_forward=1", "HostConfig.Sysctls"),
        (f"-v {da.volume_name('da-non', 'home')}:/x", "Name"),  # another user's volume: a name the platform gives
    ]:
        network = "" if "--network" in flags else "--network none"
        assert f"{field}:" in docker_in_lab(f"create {network} {flags} {IMAGE} true", ok=False), flags

    # logs -f follows a container to its end; exec -it is a terminal both ways (`script`).
    talk = "for i in 1 2 3; do echo line $i; sleep 0.3; done"
    docker_in_lab(f"run -d --network none --name da-talk {IMAGE} sh -c '{talk}'")
    assert docker_in_lab("logs -f da-talk", timeout=30).split("\n")[:3] == ["line 1", "line 2", "line 3"]
    tty = "docker exec -it da-web sh -c 'tty; read x; echo got-\\$x'"
    code, shown = in_lab(engine, da, "da-lim", f'echo hello | script -qec "{tty}" /dev/null', 60)
    assert code == 0 and "/dev/pts/" in shown and "got-hello" in shown, shown
    # A build (the classic builder: DOCKER_BUILDKIT=0 in the image) and a run of what it built.
    dockerfile = f"FROM {IMAGE}\\nRUN echo built > /built.txt\\n"
    in_lab(engine, da, "da-lim", f"mkdir -p /tmp/da-build && printf '{dockerfile}' > /tmp/da-build/Dockerfile")
    assert "Successfully tagged" in docker_in_lab("build -t da-img /tmp/da-build", timeout=300)
    assert docker_in_lab("run --rm --network none da-img cat /built.txt").strip() == "built"
    # The quota (the policy's defaults: 5 containers): da-web, da-talk, 3 more, then 409.
    for i in range(3):
        docker_in_lab(f"create --network none --name da-extra-{i} {IMAGE} true")
    refused = docker_in_lab(f"create --network none {IMAGE} true", ok=False)
    assert "containers: 5 of at most 5 exist" in refused, refused
    reasons = {e["reason"] for e in events(da) if (e["kind"], e["name"]) == ("DockerAccess", "da-lim")}
    assert {"Created", "Refused"} <= reasons, reasons


def test_the_watch_counts_them_and_a_stopped_servers_go_after_the_grace(da: Hub, engine: docker.DockerClient) -> None:
    wait_for(lambda: limited(da).get("da-lim", {}).get("level") == "limited", 30, "da-lim reported limited")
    # What the lab made above: da-web, da-talk and three more (the built image's run was --rm).
    wait_for(lambda: limited(da)["da-lim"]["containers"] == 5, 30, "da-lim's 5 containers counted")
    row = limited(da)["da-lim"]
    assert row["serverRunning"] and row["quota"]["containers"] == 5
    assert set(limited(da)) == {"da-lim"}  # privileged and none are not limited
    page = da.api("GET", "privileged").json()
    assert [r["user"] for r in page["limited"]] == ["da-lim"]
    # The server stops: what da-lim made stops with it, and is removed after the grace (5 s here).
    da.stop_server("da-lim")
    made = {"label": f"{naming.LABEL_DOCKER_OWNER}=da-lim"}
    # sparse: docker-py would inspect each listed container, and one removed meanwhile is a 404
    wait_for(lambda: not engine.containers.list(all=True, sparse=True, filters=made), 60, "stopped, then removed")
    reasons = {e["reason"] for e in events(da) if (e["kind"], e["name"]) == ("DockerAccess", "da-lim")}
    assert {"ContainersStopped", "ContainersRemoved"} <= reasons, reasons
    # Started again: the same socket, nothing left, room for new work.
    da.start_server("da-lim")
    wait_for(lambda: in_lab(engine, da, "da-lim", "docker ps -a -q") == (0, ""), 30, "an empty list in the new lab")
    code, out = in_lab(engine, da, "da-lim", f"docker run -d --network none --name da-again {IMAGE} sleep 600")
    assert code == 0, out


def test_the_watch_follows_membership(da: Hub, engine: docker.DockerClient) -> None:
    apply(da, "GroupMembership", "da-team", {**MEMBERSHIP, "members": []})
    # Woken by the membership change, not by a resync (every 30 s).
    wait_for(lambda: "da-lim" not in limited(da), 15, "da-lim no longer limited")
    # The socket is gone from the lab at once, and what da-lim made is stopped.
    assert in_lab(engine, da, "da-lim", "docker ps", timeout=20)[0] != 0
    made = f"{naming.LABEL_DOCKER_OWNER}=da-lim"
    wait_for(lambda: not engine.containers.list(sparse=True, filters={"label": made}), 30, "da-again stopped")
