"""A real platform for tests and benchmarks: `scripts/up.sh` on free ports, torn down by label.

Everything it creates carries the platform label `PLATFORM_ID` (default `jhds-test`), so a
run that was interrupted is cleaned up by the next one (`cleanup_docker`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import docker
import requests

from vocabulary import naming

ROOT = Path(__file__).resolve().parents[1]
# A parallel run (another worktree on the same engine) sets its own label, e.g. jhds-test-w1;
# modules with platforms of their own must then not run in both at once. Each pytest-xdist
# worker of one run (`scripts/test.sh`'s two lanes) adds its id: its own session hub and its
# own platforms, each found and removed by its own label.
TEST_PLATFORM = os.environ.get("JHDS_TEST_PLATFORM", "jhds-test") + (
    f"-{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else ""
)
# The suite's hubs spawn the minimal lab, on Swarm too: the test swarm carries it (and the
# backup helper) rather than `make swarm-up`'s default, the lab `make up` asks for.
SUITE_SWARM_IMAGES = "jupyterhub-ds/lab:minimal jupyterhub-ds/base:bookworm"
os.environ.setdefault("SWARM_IMAGES", SUITE_SWARM_IMAGES)
PASSWORD = "correct-horse-battery-staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}")


LAB_NOTIFICATIONS = "jupyterlab-notifications-extension/notifications"


def server_token(engine: docker.DockerClient, hub: Hub, user: str) -> str:
    """The server's own API token, as its container holds it."""
    env = engine.containers.get(hub.container_name(user)).attrs["Config"]["Env"]
    return next(e.split("=", 1)[1] for e in env if e.startswith("JUPYTERHUB_API_TOKEN="))


def lab_queue(hub: Hub, engine: docker.DockerClient, user: str, as_activity: bool = True) -> list[dict]:
    """What the lab holds for its browser tabs (reading empties the queue). Through the proxy,
    or (`as_activity=False`) on the lab's own port with `no_track_activity`, so that the
    reading is not activity (what the idle-culling tests need)."""
    base, params = f"{hub.url}user/{user}", {}
    if not as_activity:
        container = engine.containers.get(hub.container_name(user))
        env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
        base, params = env["JUPYTERHUB_SERVICE_URL"].rstrip("/"), {"no_track_activity": "1"}
    r = requests.get(
        f"{base}/{LAB_NOTIFICATIONS}",
        params=params,
        headers={"Authorization": f"token {server_token(engine, hub, user)}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return body.get("notifications", body) if isinstance(body, dict) else body


def cleanup_docker(client: docker.DockerClient, platform: str, volumes: bool = True) -> None:
    """Remove every container (and volume) labelled with this platform id, and what its
    `limited` users made through its Docker proxy (containers, volumes, networks, images)."""
    label = f"{naming.LABEL_PLATFORM}={platform}"
    made = f"{naming.LABEL_DOCKER_PLATFORM}={platform}"
    for container in [
        *client.containers.list(all=True, filters={"label": made}),
        *client.containers.list(all=True, filters={"label": label}),
    ]:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
    if volumes:
        for volume in [*client.volumes.list(filters={"label": made}), *client.volumes.list(filters={"label": label})]:
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)
    for network in client.networks.list(filters={"label": made}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            network.remove()
    for image in client.images.list(filters={"label": made}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.images.remove(image.id, force=True)


@contextlib.contextmanager
def own_hub(client: docker.DockerClient, state_dir: Path, platform: str, env: dict[str, str] | None = None):
    """A second platform beside the session's, with its own label, settings and state; started
    like `make up`, then stopped and removed by label whatever happens."""
    cleanup_docker(client, platform)
    hub = Hub(state_dir=state_dir, platform=platform, extra_env=env or {})
    result = hub.up()
    assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"
    try:
        yield hub
    finally:
        hub.down()
        cleanup_docker(docker.from_env(), platform)


class HubApi:
    """A hub's REST API on one kept-alive session (benchmarks: many calls), raising on an
    answer not in `ok`."""

    def __init__(self, hub: Hub, timeout: float = 60):
        self.base, self.timeout = f"{hub.url}hub/api/", timeout
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {hub.token}"

    def __call__(self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 204), **kwargs) -> requests.Response:
        r = self.http.request(method, self.base + path, timeout=self.timeout, **kwargs)
        if r.status_code not in ok:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r


@dataclass
class Hub:
    """One JupyterHub started by `scripts/up.sh`, with an automation token for its API."""

    state_dir: Path
    platform: str = TEST_PLATFORM
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    reconciler_port: int = field(default_factory=free_port)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "DOCKER_"))}
        env.update(
            {
                "JUPYTERHUB_STATE_DIR": str(self.state_dir),
                "JUPYTERHUB_PORT": str(self.port),
                "JUPYTERHUB_HUB_PORT": str(free_port()),
                "JUPYTERHUB_PROXY_API_PORT": str(free_port()),
                "JUPYTERHUB_ADMIN": "admin",
                "JUPYTERHUB_ADMIN_PASSWORD": PASSWORD,
                "PLATFORM_ID": self.platform,
                "DOCKER_CONTAINER_PREFIX": self.platform,
                "USER_VOLUME_NAME_TEMPLATE": f"{self.platform}-{{username}}_{{volume}}",
                "HUB_AUTOMATION_TOKEN": self.token,
                "HUB_AUTOMATION_ADMIN": "true",  # the tests manage users and servers with it
                # Test platforms share this engine: each leaves the others' servers alone.
                "ENGINE_ACCESS_ALLOWED": "jhds-test*,jhds-bench*",
                "NATIVE_AUTH_ALLOWED_FAILED_LOGINS": "3",
                # Every test signs in from 127.0.0.1: the limiter runs, its defaults are tested
                # in test_caps (which sets them on a platform of its own).
                "LOGIN_RATE_LIMIT": "1000/minute",
                "SIGNUP_RATE_LIMIT": "1000/minute",
                "MANIFESTS_DIR": str(self.manifests_dir),
                "RECONCILER_PORT": str(self.reconciler_port),
                # The minimal lab keeps the suite fast; tests of the ds image ask for it.
                "DOCKER_NOTEBOOK_IMAGE": "jupyterhub-ds/lab:minimal",
            }
        )
        env.update(self.extra_env)
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def manifests_dir(self) -> Path:
        return self.state_dir / "manifests"

    @property
    def reconciler_url(self) -> str:
        return f"http://127.0.0.1:{self.reconciler_port}/"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "jupyterhub.log"

    def up(self) -> subprocess.CompletedProcess[str]:
        self.manifests_dir.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [str(ROOT / "scripts/up.sh")], env=self.env, capture_output=True, text=True, timeout=900, check=False
        )

    def down(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ROOT / "scripts/down.sh")], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def reconciler_details(self, timeout: float = 10) -> dict:
        """The reconciler's details (pid, queue, last resync): behind a token with the read scope."""
        r = requests.get(
            self.reconciler_url + "health/details", headers={"Authorization": f"token {self.token}"}, timeout=timeout
        )
        r.raise_for_status()
        return r.json()

    def hubctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `hubctl` against this hub with the automation token."""
        env = {**self.env, "JUPYTERHUB_URL": self.url, "JUPYTERHUB_API_TOKEN": self.token}
        return subprocess.run(
            [str(ROOT / ".venv/bin/hubctl"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # --- REST API with the automation service's token ---
    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, f"{self.url}hub/api/{path}", headers=headers, timeout=30, **kwargs)

    def create_user(self, name: str) -> None:
        r = self.api("POST", f"users/{quote(name)}")
        assert r.status_code in (201, 409), r.text

    def start_server(self, name: str, timeout: float = 120) -> float:
        """Start a user's default server and wait until the hub reports it ready; seconds taken."""
        t0 = time.perf_counter()
        r = self.api("POST", f"users/{quote(name)}/server")
        assert r.status_code in (201, 202), r.text
        self.wait_ready(name, timeout)
        return time.perf_counter() - t0

    def wait_ready(self, name: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api("GET", f"users/{quote(name)}").json()["servers"].get("")
            if server is None:
                raise AssertionError(f"server of {name} failed to start; see {self.log_path}")
            if server["ready"]:
                return
            time.sleep(0.2)
        raise AssertionError(f"server of {name} not ready within {timeout} s; see {self.log_path}")

    def broadcast(
        self, message: str | dict, timeout: float = 60, interval: float = 0.2, session: requests.Session | None = None
    ) -> dict:
        """Send a broadcast (`POST notifications`: a message to every running server, or a whole
        spec) with the automation token, or as the user of a logged-in `session`, and wait until
        it ends (Completed or Failed); its report (deliveries, counts)."""

        def call(method: str, path: str, **kwargs) -> requests.Response:
            return self.as_user(session, method, path, **kwargs) if session else self.api(method, path, **kwargs)

        r = call("POST", "notifications", json={"message": message} if isinstance(message, str) else message)
        assert r.status_code == 202, r.text
        name = r.json()["name"]
        return wait_for(
            lambda: (d := call("GET", f"notifications/{name}").json())["phase"] in ("Completed", "Failed") and d,
            timeout,
            f"broadcast {name} ended",
            interval=interval,
        )

    def stop_server(self, name: str, timeout: float = 60) -> None:
        r = self.api("DELETE", f"users/{quote(name)}/server")
        assert r.status_code in (202, 204, 400), r.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "" not in self.api("GET", f"users/{quote(name)}").json()["servers"]:
                return
            time.sleep(0.2)
        raise AssertionError(f"server of {name} did not stop within {timeout} s")

    def container_name(self, user: str, server: str = "") -> str:
        return naming.container_name(self.platform, user, server)

    def volume_name(self, user: str, key: str) -> str:
        return naming.volume_name(f"{self.platform}-{{username}}_{{volume}}", user, key)

    # --- the browser's way in: NativeAuthenticator's forms, with XSRF ---
    def _form(self, session: requests.Session, path: str, data: dict[str, str]) -> requests.Response:
        session.get(f"{self.url}hub/{path}", timeout=30)
        xsrf = session.cookies.get("_xsrf", path="/hub/") or session.cookies.get("_xsrf") or ""
        return session.post(f"{self.url}hub/{path}", data={**data, "_xsrf": xsrf}, timeout=30, allow_redirects=False)

    def signup(self, username: str, password: str = PASSWORD) -> str:
        """Sign up; returns the page's result message text."""
        with requests.Session() as s:
            r = self._form(
                s,
                "signup",
                {"username": username, "signup_password": password, "signup_password_confirmation": password},
            )
        assert r.status_code == 200, r.text
        match = re.search(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', r.text, re.S)
        return re.sub(r"<[^>]+>|\s+", " ", match.group(1)).strip() if match else r.text

    def login(self, username: str, password: str = PASSWORD) -> tuple[requests.Session | None, str]:
        """Log in; returns (session, "") on success, (None, the page's error) on failure."""
        s = requests.Session()
        r = self._form(s, "login", {"username": username, "password": password})
        if r.status_code == 302:
            return s, ""
        s.close()
        match = re.search(r'<p class="login_error">\s*(.*?)\s*</p>', r.text, re.S)
        return None, match.group(1).strip() if match else r.text[:500]

    def approve(self, admin: requests.Session, username: str) -> None:
        r = admin.get(f"{self.url}hub/authorize/{quote(username)}", timeout=30)
        assert r.status_code == 200, r.status_code

    def approved_user(self, admin: requests.Session, username: str) -> requests.Session:
        """Sign up, get approved and log in (the hub knows a user from the first login)."""
        self.signup(username)
        self.approve(admin, username)
        session, error = self.login(username)
        assert session is not None, error
        return session

    def as_user(self, session: requests.Session, method: str, path: str, **kwargs) -> requests.Response:
        """A REST call the way the browser makes it: the login cookie plus the XSRF header."""
        xsrf = session.cookies.get("_xsrf", path="/hub/") or session.cookies.get("_xsrf") or ""
        headers = {"X-XSRFToken": xsrf, **kwargs.pop("headers", {})}
        return session.request(method, f"{self.url}hub/api/{path}", headers=headers, timeout=180, **kwargs)

    def exec(self, engine: docker.DockerClient, user: str, command: str) -> str:
        """Run a shell command as the lab user in the user's container; its output."""
        container = engine.containers.get(self.container_name(user))
        code, output = container.exec_run(["sh", "-c", command], user="lab")
        assert code == 0, output.decode()
        return output.decode()


# --- the two-node test swarm of `scripts/swarm.sh` (node a the manager, b a worker) ---
SWARM_RUN_DIR = "/run/jhds-swarm"
SWARM_NODES = ("a", "b")


@dataclass
class Swarm:
    """The test swarm: each node's engine socket (DOCKER_HOST form) and swarm node id."""

    manager_host: str
    node_hosts: dict[str, str]
    node_ids: dict[str, str]

    def client(self, node: str) -> docker.DockerClient:
        """A client of one node's own engine ("a" is the manager's); close it when done."""
        return docker.DockerClient(base_url=self.node_hosts[node])


def test_swarm() -> Swarm:
    """Start the test swarm unless it runs (`scripts/swarm.sh up`, seconds when it does) and
    describe it. Not torn down here: `scripts/swarm.sh down` removes all of it."""
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    result = subprocess.run(
        [str(ROOT / "scripts/swarm.sh"), "up"], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, f"scripts/swarm.sh up failed:\n{result.stderr}"
    manager_host = result.stdout.strip().removeprefix("DOCKER_HOST=")
    node_hosts = {n: f"unix://{SWARM_RUN_DIR}/{n}.sock" for n in SWARM_NODES}
    node_ids = {}
    for n, host in node_hosts.items():
        client = docker.DockerClient(base_url=host)
        try:
            node_ids[n] = client.info()["Swarm"]["NodeID"]
        finally:
            client.close()
    return Swarm(manager_host=manager_host, node_hosts=node_hosts, node_ids=node_ids)


test_swarm.__test__ = False  # a helper, not a test, in the modules that import it


def cleanup_swarm(platform: str) -> None:
    """Remove the services (on the manager), then the containers and volumes (on each node)
    labelled with this platform id, on the test swarm's nodes that answer; starts nothing.
    A service's labels reach neither its tasks' containers nor their volumes: those carry
    the label only when the service gives it (container labels, the mount's volume labels)."""
    label = f"{naming.LABEL_PLATFORM}={platform}"
    clients = {}
    for n in SWARM_NODES:
        if not os.path.exists(f"{SWARM_RUN_DIR}/{n}.sock"):
            continue
        client = docker.DockerClient(base_url=f"unix://{SWARM_RUN_DIR}/{n}.sock", timeout=30)
        try:
            client.ping()
        except (docker.errors.DockerException, OSError):
            client.close()  # a node whose engine is stopped keeps what it holds
            continue
        clients[n] = client
    try:
        for client in clients.values():
            if client.info()["Swarm"].get("ControlAvailable"):
                for service in client.services.list(filters={"label": label}):
                    with contextlib.suppress(docker.errors.NotFound):
                        service.remove()
        for client in clients.values():
            for container in client.containers.list(all=True, filters={"label": label}, ignore_removed=True):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    container.remove(force=True)  # the node may be removing it too (409)

            def volumes_gone(client=client) -> bool:  # in use until the node has removed the task
                for volume in client.volumes.list(filters={"label": label}):
                    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                        volume.remove(force=True)
                return not client.volumes.list(filters={"label": label})

            wait_for(volumes_gone, 30, f"the volumes labelled {label} removed", interval=0.5)
    finally:
        for client in clients.values():
            client.close()
