"""Fixtures on real parts: the Docker engine, a JupyterHub started by `scripts/up.sh`, labs."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import docker
import pytest
from selenium import webdriver

from tests.harness import ROOT, TEST_PLATFORM, Hub, Swarm, cleanup_docker, own_hub, test_swarm
from tests.integration import leaks
from tests.integration.browser import chromium

# Modules that must run on the same lane (`scripts/test.sh` runs two pytest-xdist workers):
# those sharing one machine-wide thing (the test swarm) or one platform of their own (started
# once per lane). Every other module is a unit of its own, so its module-scoped platform
# starts once. (pytest-xdist's own `xdist_group` does not hold on pytest 9.2, whose node ids
# it can no longer suffix: the scheduler below groups by module itself.)
SHARED_LANE = {
    "test_swarm": "swarm",
    "test_swarm_infra": "swarm",
    "test_swarm_readme": "swarm",
    "test_backups": "backup",
    "test_backups_bounds": "backup",
    "test_notebook": "ds",
    "test_notebook_browser": "ds",
}
# Run alone, after the two lanes: what restarts the engine, and what tests that this
# platform's engine-wide watch stops a rogue container (every hub's watch judges the whole
# engine: the other lane's hubs would race to stop it first, and report it themselves).
ALONE = {"test_zz_engine_restart", "test_trust_survey"}
ALONE_TESTS = (
    "test_abuse.py::test_5_siblings_with_the_socket",
    "test_privileged_drift.py::test_container_outside_the_hub_with_the_socket_is_drift",
)


def lane_unit(nodeid: str) -> str:
    """The unit of work a test goes to a lane with: its module, or its module's shared group."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return SHARED_LANE.get(module, module)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        """Whole units to whichever lane is free, the largest first."""

        def _split_scope(self, nodeid: str) -> str:
            return lane_unit(nodeid)

    return LaneScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)
        if lane_unit(item.nodeid) in ALONE or item.nodeid.rsplit("/", 1)[-1].startswith(ALONE_TESTS):
            item.add_marker(pytest.mark.alone)


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.ping()  # no engine is a failure here, never a skip: `make test` starts one
    cleanup_docker(client, TEST_PLATFORM)  # what an interrupted run left behind
    yield client
    cleanup_docker(client, TEST_PLATFORM)
    client.close()


@pytest.fixture(scope="session")
def hub(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One platform for the session, started exactly as `make up` starts it."""
    # Short broadcast deadlines, so a frozen server's timeout is seen within a test.
    h = Hub(
        state_dir=tmp_path_factory.mktemp("hub-state"),
        extra_env={"BROADCAST_DEADLINE": "6", "BROADCAST_ATTEMPT_TIMEOUT": "2", "RESYNC_SECONDS": "10"},
    )
    result = h.up()
    assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"
    yield h
    h.down()


@pytest.fixture(scope="module", autouse=True)
def _what_the_module_leaves_on_the_session_hub(request: pytest.FixtureRequest) -> Iterator[None]:
    """Set up before and torn down after the module's own fixtures: `leaks.check` sees what
    its clean-up left (a warning in the summary, see tests/integration/leaks.py)."""
    items = [i for i in request.session.items if i.module is request.module]
    if not any("hub" in i.fixturenames for i in items):
        yield
        return
    hub = request.getfixturevalue("hub")
    if not isinstance(hub, Hub):  # a module's own `hub` fixture (a compose file's service, say)
        yield
        return
    before = leaks.snapshot(hub)
    yield
    leaks.check(request.module.__name__.rsplit(".", 1)[-1], hub, before)


@pytest.fixture(scope="session")
def admin_session(hub: Hub):
    """The admin (created at start-up with JUPYTERHUB_ADMIN_PASSWORD), logged in through the form."""
    session, error = hub.login("admin")
    assert session is not None, error
    yield session
    session.close()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (own empty profile) per test."""
    with chromium(tmp_path / "chromium-profile") as browser:
        yield browser


@pytest.fixture(scope="session")
def swarm() -> Iterator[Swarm]:
    """The two-node test swarm (`scripts/swarm.sh up`), removed at the end of the session so
    nothing is left running; the main engine is untouched."""
    yield test_swarm()
    subprocess.run([str(ROOT / "scripts/swarm.sh"), "down"], capture_output=True, timeout=300, check=False)


class OwnPlatforms:
    """Platforms of their own (`own_hub`) shared by the modules that ask for the same settings:
    each distinct set of settings is started once (a `make up` and its `make down` are tens of
    seconds on 2 cores) and stopped and removed by label when no test that may use one is next
    (`pytest_runtest_teardown` below), at the latest at the end of the session.

    `platform(name, env, users)`: the running platform whose settings are exactly `env` (the
    same keys and values), else a new one labelled `<JHDS_TEST_PLATFORM>-<name>`, with its own
    state folder; `users` are created on it. Modules that share one must use what the hub says
    (`hub.platform`, `hub.container_name`, ...), not a label of their own, and their own users:
    what one module leaves on a shared platform the next one finds."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._running: dict[frozenset[tuple[str, str]], Hub] = {}
        self._stack = contextlib.ExitStack()

    def platform(self, name: str, env: Mapping[str, str], users: Iterable[str] = ()) -> Hub:
        settings = frozenset(env.items())
        if settings not in self._running:
            self._running[settings] = self._start(name, env)
        for user in users:  # the module's own users, created (again) through the API
            self._running[settings].create_user(user)
        return self._running[settings]

    def _start(self, name: str, env: Mapping[str, str]) -> Hub:
        label = f"{TEST_PLATFORM}-{name}"
        clash = [h for h in self._running.values() if h.platform == label]
        assert not clash, f"{label} runs with other settings: {dict(clash[0].extra_env)} (pick another name)"
        client = self._stack.enter_context(contextlib.closing(docker.from_env()))
        state = self._tmp.mktemp(f"own-{name}") / "state"
        return self._stack.enter_context(own_hub(client, state, label, dict(env)))

    def close(self) -> None:
        """Stop and remove every platform started here (each by its label)."""
        self._running.clear()
        self._stack.close()
        self._stack = contextlib.ExitStack()


_OWN_PLATFORMS = pytest.StashKey[OwnPlatforms]()


@pytest.fixture(scope="session")
def own_platforms(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPlatforms]:
    """The session's shared platforms of their own; see `OwnPlatforms`. A module's fixture:
    `hub = own_platforms.platform("ds", {"DOCKER_NOTEBOOK_IMAGE": "jupyterhub-ds/lab:ds"})`."""
    platforms = OwnPlatforms(tmp_path_factory)
    request.config.stash[_OWN_PLATFORMS] = platforms
    try:
        yield platforms
    finally:
        del request.config.stash[_OWN_PLATFORMS]
        platforms.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """After the last test of a run of tests that may use the shared platforms (its module's
    fixtures torn down), stop them: no idle platform lives on through the rest of the suite."""
    yield
    platforms = item.config.stash.get(_OWN_PLATFORMS, None)
    if platforms is not None and (nextitem is None or "own_platforms" not in getattr(nextitem, "fixturenames", ())):
        platforms.close()
