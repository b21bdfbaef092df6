"""The production stack for real: the hub image built offline, run by Docker Compose v2.

`scripts/hub-image.sh` (what `make images` runs) builds the hub image; `scripts/deploy.sh`
(`make deploy`) runs compose.yml + compose.local.yml: the hub container on the host network,
published on 127.0.0.1, with the engine socket, its state on a named volume and the
manifests folder mounted. Then, in order (the tests share the one stack): the admin signs
in, a user signs up and starts a lab from the containerised hub, the Usage page and its
vendored Chart.js are served from the image's package, a broadcast reaches the lab;
the hub container is restarted and then recreated from a newer image over a schema-1
store, and everything keeps working; the health check follows the reconciler; `make up`
and `make deploy` refuse each other's port; `make undeploy` keeps the volumes; a store
newer than the image is refused. Everything is removed at the end, by label and by compose.

Names match `jhds-test*`: other test platforms on this engine allow the socket to those
containers only (ENGINE_ACCESS_ALLOWED), and this one allows theirs.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import docker.models.containers
import pytest
import requests

from reconciler.tables import SCHEMA_VERSION
from tests.harness import PASSWORD, Hub, cleanup_docker, free_port, lab_queue, server_token, wait_for
from tests.helpers import gm, group_members

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = "jhds-test-compose"
PROJECT = "jhds-test-compose"
CONTAINER = "jhds-test-compose-hub"
DATA_VOLUME = "jhds-test-compose-data"
SHARED_VOLUME = "jhds-test-compose-shared"
NEXT_IMAGE = "jhds-test-compose/hub:next"  # the "newer image" of the recreate
USER = "composeuser1"
GROUP_FILE = "compose-team.yaml"

# Run inside a one-off container of the hub image on the stopped hub's volume: the store
# back to schema 1 as an older image left it (the bookkeeping columns absent, not empty).
DOWNGRADE = """
import sqlite3
from reconciler.tables import ADDED_IN_2
db = sqlite3.connect("/data/jupyterhub.sqlite")
for column in ADDED_IN_2:
    db.execute(f"DROP INDEX IF EXISTS ix_jhds_resources_{column}")
    db.execute(f"ALTER TABLE jhds_resources DROP COLUMN {column}")
db.execute("UPDATE jhds_meta SET value = 1 WHERE key = 'schema_version'")
db.commit()
"""
SET_SCHEMA = (
    "import sqlite3, sys; db = sqlite3.connect('/data/jupyterhub.sqlite'); "
    "db.execute(\"UPDATE jhds_meta SET value = ? WHERE key = 'schema_version'\", (int(sys.argv[1]),)); db.commit()"
)
READ_SCHEMA = (
    "import sqlite3; print(sqlite3.connect('/data/jupyterhub.sqlite')"
    ".execute(\"SELECT value FROM jhds_meta WHERE key = 'schema_version'\").fetchone()[0])"
)


def lab_image(engine: docker.DockerClient) -> str:
    """The lab image this machine has: `minimal` after the rename, else `latest`."""
    for name in ("jupyterhub-ds/lab:minimal", "jupyterhub-ds/lab:latest"):
        try:
            engine.images.get(name)
            return name
        except docker.errors.ImageNotFound:
            continue
    pytest.fail("no lab image: run `make images`")


def compose_command() -> list[str]:
    """Docker Compose v2 as the scripts find it (scripts/compose.sh)."""
    out = subprocess.run(
        # What compose.sh says (e.g. fetching the binary on a fresh clone) goes to stderr.
        ["bash", "-c", 'source scripts/lib.sh && source scripts/compose.sh >&2 && printf "%s\\n" "${COMPOSE[@]}"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return out.stdout.split()


@dataclass
class Stack:
    engine: docker.DockerClient
    hub: Hub
    env: dict[str, str]
    compose: list[str]
    lab_image: str

    def run(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), cwd=ROOT, env={**self.env, **env}, capture_output=True, text=True, timeout=timeout, check=False
        )

    def compose_run(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(*self.compose, "--project-directory", str(ROOT), *args, timeout=timeout, **env)

    def deploy(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(ROOT / "scripts/deploy.sh"), timeout=600, JHDS_IMAGES_READY="1", **env)

    def container(self) -> docker.models.containers.Container:
        return self.engine.containers.get(CONTAINER)

    def logs(self) -> str:
        return self.container().logs().decode(errors="replace")

    def on_volume(self, *command: str, image: str = "jupyterhub-ds/hub:latest") -> str:
        """Run a command of the hub image on the (stopped) hub's data volume."""
        output = self.engine.containers.run(
            image,
            list(command),
            name=f"{PLATFORM}-volume-job",
            network_mode="none",
            volumes={DATA_VOLUME: {"bind": "/data", "mode": "rw"}},
            labels={"io.jupyterhub-ds.platform": PLATFORM},
            remove=True,
        )
        return output.decode()

    def wait_healthy(self, timeout: float = 120) -> None:
        def healthy() -> bool:
            state = self.engine.api.inspect_container(CONTAINER)["State"]
            return state.get("Health", {}).get("Status") == "healthy"

        wait_for(healthy, timeout, f"{CONTAINER} healthy\n{self.logs()[-3000:]}", interval=0.5)


def teardown(engine: docker.DockerClient, compose: list[str], env: dict[str, str]) -> None:
    """Whatever a run left: labs first (they hold the shared volume), the compose project
    with its volumes, then anything of ours by name and label, and the newer image."""
    cleanup_docker(engine, PLATFORM, volumes=False)
    subprocess.run(
        [*compose, "--project-directory", str(ROOT), "down", "-v", "--timeout", "10"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=180,
        check=False,
    )
    for name in (CONTAINER, f"{PLATFORM}-volume-job"):
        with contextlib.suppress(docker.errors.NotFound):
            engine.containers.get(name).remove(force=True)
    cleanup_docker(engine, PLATFORM)
    for name in (DATA_VOLUME, SHARED_VOLUME):
        with contextlib.suppress(docker.errors.NotFound):
            engine.volumes.get(name).remove(force=True)
    with contextlib.suppress(docker.errors.ImageNotFound):
        engine.images.remove(NEXT_IMAGE, force=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    engine = docker.from_env()
    state = tmp_path_factory.mktemp("compose-state")
    (state / "manifests").mkdir()
    compose = compose_command()
    hub = Hub(state_dir=state, platform=PLATFORM, token=secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "DOCKER_", "COMPOSE_"))}
    env.update(
        {
            # The same variables `make up` reads (tests/harness.py), plus the compose names.
            "JUPYTERHUB_STATE_DIR": str(state),
            "JUPYTERHUB_PORT": str(hub.port),
            "JUPYTERHUB_HUB_PORT": str(free_port()),
            "JUPYTERHUB_PROXY_API_PORT": str(free_port()),
            "RECONCILER_PORT": str(hub.reconciler_port),
            "JUPYTERHUB_ADMIN": "admin",
            "JUPYTERHUB_ADMIN_PASSWORD": PASSWORD,
            "PLATFORM_ID": PLATFORM,
            "DOCKER_CONTAINER_PREFIX": PLATFORM,
            "USER_VOLUME_NAME_TEMPLATE": f"{PLATFORM}-{{username}}_{{volume}}",
            "HUB_AUTOMATION_TOKEN": hub.token,
            "HUB_AUTOMATION_ADMIN": "true",
            "ENGINE_ACCESS_ALLOWED": "jhds-test*,jhds-bench*",
            # Report only: other test platforms' escalation tests judge their own containers.
            "PRIVILEGED_DRIFT_POLICY": "report",
            "MANIFESTS_DIR": str(hub.manifests_dir),
            "RESYNC_SECONDS": "10",
            "DOCKER_NOTEBOOK_IMAGE": lab_image(engine),
            "COMPOSE_PROJECT_NAME": PROJECT,
            "HUB_CONTAINER_NAME": CONTAINER,
            "HUB_DATA_VOLUME": DATA_VOLUME,
            "SHARED_VOLUME_NAME": SHARED_VOLUME,
            "HUB_HEALTH_INTERVAL": "2s",
            "DEPLOY_ENV_FILE": str(state / "deploy.env"),
            "COMPOSE_FILE": f"{ROOT}/compose.yml:{ROOT}/compose.local.yml",
        }
    )
    teardown(engine, compose, env)
    built = subprocess.run(
        [str(ROOT / "scripts/hub-image.sh")],
        cwd=ROOT,
        env={k: v for k, v in env.items() if k != "JUPYTERHUB_STATE_DIR"},  # the checkout's caches
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert built.returncode == 0, f"hub image build failed:\n{built.stdout}\n{built.stderr}"
    s = Stack(engine=engine, hub=hub, env=env, compose=compose, lab_image=env["DOCKER_NOTEBOOK_IMAGE"])
    try:
        yield s
    finally:
        teardown(engine, compose, env)
        left = engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"})
        left += engine.containers.list(all=True, filters={"label": f"io.jupyterhub-ds.platform={PLATFORM}"})
        assert not left, f"containers left behind: {[c.name for c in left]}"
        engine.close()


def hub_image_is_offline_and_labelled(engine: docker.DockerClient) -> None:
    image = engine.images.get("jupyterhub-ds/hub:latest")
    assert image.labels.get("io.jupyterhub-ds.input-hash"), "the hub image carries its input hash"
    assert image.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "jhds-healthcheck"]


def test_deploy_refuses_while_make_ups_hub_runs(stack: Stack) -> None:
    pidfile = stack.hub.state_dir / "jupyterhub.pid"
    pidfile.write_text(str(os.getpid()))  # a live process stands for `make up`'s hub
    try:
        result = stack.deploy()
    finally:
        pidfile.unlink()
    assert result.returncode != 0
    assert "make up's hub runs" in result.stderr and "make down" in result.stderr, result.stderr
    assert not stack.engine.containers.list(all=True, filters={"name": CONTAINER})


def test_deploy_starts_the_hub_container_healthy(stack: Stack) -> None:
    hub_image_is_offline_and_labelled(stack.engine)
    t0 = time.perf_counter()
    result = stack.deploy()
    assert result.returncode == 0, f"make deploy failed:\n{result.stdout}\n{result.stderr}"
    print(f"make deploy (images ready): {time.perf_counter() - t0:.1f} s")
    assert f"is ready at {stack.hub.url}" in result.stdout
    attrs = stack.container().attrs
    assert attrs["State"]["Health"]["Status"] == "healthy"
    assert attrs["HostConfig"]["NetworkMode"] == "host"
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/var/run/docker.sock"]["RW"]
    assert mounts["/data"]["Name"] == DATA_VOLUME
    assert mounts["/srv/manifests"]["Source"] == str(stack.hub.manifests_dir)
    assert f"store schema {SCHEMA_VERSION} ok" in stack.logs()
    assert requests.get(f"{stack.hub.url}hub/health", timeout=5).status_code == 200


def test_make_up_refuses_the_port_of_the_deployment(stack: Stack) -> None:
    result = stack.run(str(ROOT / "scripts/up.sh"), timeout=300)
    if result.returncode == 0:  # it should not have started; stop what it started
        stack.run(str(ROOT / "scripts/down.sh"))
    assert result.returncode != 0
    assert f"compose deployment (container {CONTAINER}) runs on port {stack.hub.port}" in result.stderr
    assert "make undeploy" in result.stderr


def lab_answers(stack: Stack) -> None:
    """The lab answers through the containerised hub's proxy, to the server's own token (the
    credential the reconciler's deliveries use). Its JupyterLab page is the lab image's
    business, checked by the lab image's own tests."""
    token = server_token(stack.engine, stack.hub, USER)
    r = requests.get(f"{stack.hub.url}user/{USER}/api/status", headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 200 and "started" in r.json(), r.text[:300]


def test_admin_signs_in_and_a_user_signs_up_and_starts_a_lab(stack: Stack) -> None:
    hub = stack.hub
    admin, error = hub.login("admin")
    assert admin is not None, error
    user = hub.approved_user(admin, USER)
    r = hub.as_user(user, "POST", f"users/{USER}/server")
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(USER)
    lab = stack.engine.containers.get(hub.container_name(USER))
    assert lab.attrs["Config"]["Image"] == stack.lab_image
    assert lab.labels["io.jupyterhub-ds.platform"] == PLATFORM
    assert lab.attrs["HostConfig"]["NetworkMode"] == "host"
    lab_answers(stack)
    admin.close()
    user.close()


def test_the_image_serves_the_usage_page_with_its_vendored_chart_js(stack: Stack) -> None:
    """The static files are package data: the image's non-editable install has them."""
    hub = stack.hub
    admin, error = hub.login("admin")
    assert admin is not None, error
    page = admin.get(f"{hub.url}hub/usage", timeout=30)
    assert page.status_code == 200 and "platform-static/usage.js" in page.text, stack.logs()[-3000:]
    # the platform's templates are the installed package's (the image reads its config elsewhere)
    servers = admin.get(f"{hub.url}hub/servers", timeout=30)
    assert servers.status_code == 200 and 'id="servers-panel"' in servers.text, servers.status_code
    chart = requests.get(f"{hub.url}hub/platform-static/vendor/chart.js/chart.umd.min.js", timeout=30)
    assert chart.status_code == 200
    assert chart.content == (ROOT / "hub_config/static/vendor/chart.js/chart.umd.min.js").read_bytes()
    data = hub.as_user(admin, "GET", "usage-charts?since=1d")
    assert data.status_code == 200 and "serverHours" in data.json(), data.text[:300]
    admin.close()


def broadcast_reaches_the_lab(stack: Stack, message: str) -> None:
    hub = stack.hub
    lab_queue(hub, stack.engine, USER)  # start from an empty queue
    admin, error = hub.login("admin")
    assert admin is not None, error
    r = hub.as_user(admin, "POST", "notifications", json={"message": message, "autoClose": False})
    assert r.status_code == 202, r.text
    name = r.json()["name"]

    def delivered() -> bool:
        data = hub.as_user(admin, "GET", f"notifications/{name}").json()
        return data.get("phase") == "Completed" and [d["outcome"] for d in data["deliveries"]] == ["delivered"]

    wait_for(delivered, 30, f"broadcast {message!r} delivered", interval=0.2)
    assert [n["message"] for n in lab_queue(hub, stack.engine, USER)] == [message]
    admin.close()


def test_a_broadcast_reaches_the_lab(stack: Stack) -> None:
    broadcast_reaches_the_lab(stack, "from the compose hub")


def test_the_mounted_manifests_folder_is_watched(stack: Stack) -> None:
    (stack.hub.manifests_dir / GROUP_FILE).write_text(gm("compose-team", "compose-team", [USER]))
    wait_for(lambda: group_members(stack.hub, "compose-team") == {USER}, 30, "the group from the mounted manifest")


def everything_still_works(stack: Stack, lab_id: str, message: str) -> None:
    hub = stack.hub
    assert hub.api("GET", f"users/{USER}").json()["servers"][""]["ready"]
    assert group_members(stack.hub, "compose-team") == {USER}
    assert hub.hubctl("get", "groupmembership", "compose-team").returncode == 0
    lab = stack.engine.containers.get(hub.container_name(USER))
    assert lab.id == lab_id and lab.status == "running", "the lab kept running through the hub's restart"
    session, error = hub.login(USER)  # the user's sign-in survived too
    assert session is not None, error
    session.close()
    lab_answers(stack)
    broadcast_reaches_the_lab(stack, message)


def test_compose_restart_keeps_users_groups_resources_and_running_labs(stack: Stack) -> None:
    lab_id = stack.engine.containers.get(stack.hub.container_name(USER)).id
    started = stack.container().attrs["State"]["StartedAt"]
    result = stack.compose_run("restart", "jupyterhub")
    assert result.returncode == 0, result.stderr
    assert stack.container().attrs["State"]["StartedAt"] != started
    stack.wait_healthy()
    everything_still_works(stack, lab_id, "after a restart")


def test_recreate_from_a_newer_image_migrates_a_schema_1_store(stack: Stack) -> None:
    """The upgrade path: the old hub stops (its store at schema 1), the new image starts."""
    lab_id = stack.engine.containers.get(stack.hub.container_name(USER)).id
    old_id = stack.container().id
    built = stack.engine.images.build(
        fileobj=io.BytesIO(b"FROM jupyterhub-ds/hub:latest\nLABEL io.jupyterhub-ds.test=next\n"),
        tag=NEXT_IMAGE,
        network_mode="none",
        rm=True,
    )[0]
    assert stack.compose_run("stop", "jupyterhub").returncode == 0
    stack.on_volume("python3", "-c", DOWNGRADE)
    assert stack.on_volume("python3", "-c", READ_SCHEMA).strip() == "1"

    result = stack.deploy(HUB_IMAGE=NEXT_IMAGE)
    assert result.returncode == 0, f"deploy of the newer image failed:\n{result.stdout}\n{result.stderr}"
    container = stack.container()
    assert container.id != old_id and container.image.id == built.id, "recreated from the newer image"
    assert f"store schema {SCHEMA_VERSION} ok" in stack.logs()
    out = container.exec_run(["python3", "-c", READ_SCHEMA])
    assert out.output.decode().strip() == str(SCHEMA_VERSION)
    everything_still_works(stack, lab_id, "after a recreate")

    # The lab image is still the configured one: a new start of the server uses it.
    stack.hub.stop_server(USER)
    stack.hub.start_server(USER)
    lab = stack.engine.containers.get(stack.hub.container_name(USER))
    assert lab.attrs["Config"]["Image"] == stack.lab_image
    assert container.attrs["Config"]["Image"] == NEXT_IMAGE


def reconciler_pid(container: docker.models.containers.Container) -> str:
    code, out = container.exec_run(
        [
            "python3",
            "-c",
            "import os; print(next(p for p in os.listdir('/proc') if p.isdigit() and "
            "b'reconciler.service' in open(f'/proc/{p}/cmdline', 'rb').read()))",
        ]
    )
    assert code == 0, out
    return out.decode().strip()


def signal(container: docker.models.containers.Container, pid: str, name: str) -> docker.models.containers.ExecResult:
    """Send a signal inside the container (the image has no `kill` program)."""
    return container.exec_run(["python3", "-c", f"import os, signal; os.kill({pid}, signal.{name})"])


def test_the_health_check_follows_the_reconciler(stack: Stack) -> None:
    container = stack.container()
    code, out = container.exec_run(["jhds-healthcheck"])
    assert code == 0 and b"ok" in out, out
    pid = reconciler_pid(container)
    assert signal(container, pid, "SIGSTOP").exit_code == 0  # /health stops answering
    try:
        code, out = container.exec_run(["jhds-healthcheck"])
        assert code == 1 and f":{stack.env['RECONCILER_PORT']}/health" in out.decode(), out

        def docker_saw_it() -> bool:
            log = stack.engine.api.inspect_container(CONTAINER)["State"]["Health"]["Log"]
            return any(entry["ExitCode"] != 0 for entry in log[-3:])

        wait_for(docker_saw_it, 30, "a failed health check in Docker's log", interval=0.5)
    finally:
        signal(container, pid, "SIGCONT")
    stack.wait_healthy()


def test_undeploy_stops_it_and_keeps_the_volumes(stack: Stack) -> None:
    result = stack.run(str(ROOT / "scripts/undeploy.sh"), timeout=180, HUB_IMAGE=NEXT_IMAGE)
    assert result.returncode == 0, result.stderr
    assert not stack.engine.containers.list(all=True, filters={"name": CONTAINER})
    assert not stack.engine.containers.list(all=True, filters={"label": f"io.jupyterhub-ds.platform={PLATFORM}"})
    volumes = {v.name for v in stack.engine.volumes.list()}
    assert {DATA_VOLUME, stack.hub.volume_name(USER, "home")} <= volumes


def test_a_store_newer_than_the_image_is_refused_with_a_clear_message(stack: Stack) -> None:
    stack.on_volume("python3", "-c", SET_SCHEMA, str(SCHEMA_VERSION + 1))
    result = stack.deploy()
    assert result.returncode != 0
    expected = f"store schema {SCHEMA_VERSION + 1}, newer than this code knows ({SCHEMA_VERSION})"
    assert expected in stack.logs()
    assert "not starting" in result.stderr and expected in result.stderr, result.stderr
    assert stack.container().attrs["State"]["Health"]["Status"] != "healthy"
