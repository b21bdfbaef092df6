"""The self-service home page in a real headless Chromium: reset a volume, restart a server.

Debian's chromium and chromium-driver (`scripts/browser.sh` installs them); selenium is only
the client, it never downloads a browser or a driver (the driver's path is given, so
selenium-manager is not run). Screenshots of the key steps go to `test-artifacts/browser/`,
also when a test fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import docker
import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.harness import PASSWORD, ROOT, Hub

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = ROOT / "test-artifacts" / "browser"
USER = "vera"
KEYS = ("home", "workspace", "cache")


@contextlib.contextmanager
def chromium(profile: Path, performance_log: bool = False) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with its own empty profile; always quits. The flags keep it off
    the network (this machine's is closed); `performance_log` records the page's network
    events (e.g. the lab's WebSocket handshakes)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    assert not missing, f"missing {', '.join(missing)}: run scripts/browser.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(str(CHROMEDRIVER), log_output=str(profile.with_suffix(".chromedriver.log")))
    browser = webdriver.Chrome(service=service, options=options)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (own empty profile) per test."""
    with chromium(tmp_path / "chromium-profile") as browser:
        yield browser


@pytest.fixture(scope="module")
def vera(hub: Hub, admin_session: requests.Session) -> Iterator[str]:
    """A fresh approved user; her server is stopped at the end."""
    hub.approved_user(admin_session, USER).close()
    yield USER
    if "" in hub.api("GET", f"users/{USER}").json()["servers"]:
        hub.stop_server(USER)


def shot(browser: webdriver.Chrome, name: str) -> None:
    """Save a screenshot; never raises (it also runs while a failure is on its way out)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(WebDriverException):
        browser.save_screenshot(str(SHOTS / f"{name}.png"))


def wait(browser: webdriver.Chrome, seconds: float = 15) -> WebDriverWait:
    return WebDriverWait(browser, seconds, poll_frequency=0.1)


def sign_in(browser: webdriver.Chrome, hub: Hub, user: str) -> None:
    """Through NativeAuthenticator's form. `next` keeps the login from starting the server
    (by default JupyterHub sends a user whose server is stopped to /hub/spawn)."""
    browser.get(f"{hub.url}hub/login?next={quote('/hub/home', safe='')}")
    wait(browser).until(ec.visibility_of_element_located((By.ID, "username_input"))).send_keys(user)
    browser.find_element(By.ID, "password_input").send_keys(PASSWORD)
    browser.find_element(By.ID, "login_submit").click()
    wait(browser).until(ec.presence_of_element_located((By.ID, "self-service")))
    browser.get(f"{hub.url}hub/home")
    wait(browser).until(ec.presence_of_element_located((By.ID, "self-service")))


def existing_volumes(engine: docker.DockerClient, hub: Hub, user: str) -> set[str]:
    names = {k: hub.volume_name(user, k) for k in KEYS}
    existing = {v.name for v in engine.volumes.list()}
    return {k for k, name in names.items() if name in existing}


def test_reset_the_cache_volume_from_the_home_page(
    hub: Hub, engine: docker.DockerClient, vera: str, driver: webdriver.Chrome
) -> None:
    hub.start_server(vera)
    hub.exec(engine, vera, "echo c > /home/lab/.cache/c.txt")
    hub.stop_server(vera)
    assert existing_volumes(engine, hub, vera) == set(KEYS)

    try:
        sign_in(driver, hub, vera)
        button = wait(driver).until(ec.element_to_be_clickable((By.ID, "manage-volumes")))
        assert button.text == "Manage Volumes"
        # Bootstrap fades the dialog in; click inside it only once it is fully shown.
        driver.execute_script(
            "document.getElementById('volumes-dialog')"
            ".addEventListener('shown.bs.modal', () => { window.volumesShown = true; }, { once: true });"
        )
        button.click()
        wait(driver).until(lambda d: d.execute_script("return window.volumesShown === true;"))
        for key in KEYS:
            wait(driver).until(ec.visibility_of_element_located((By.ID, f"volume-{key}")))
        listing = driver.find_element(By.ID, "volumes-list").text
        assert "Cache: downloaded packages" in listing and "/home/lab/.cache" in listing, listing
        assert "Home directory" in listing and "Workspace" in listing, listing
        reset = driver.find_element(By.ID, "volumes-reset")
        assert not reset.is_enabled()  # nothing ticked yet
        shot(driver, "volumes-1-dialog-with-list")

        driver.find_element(By.ID, "volume-cache").click()
        wait(driver).until(ec.element_to_be_clickable((By.ID, "volumes-reset"))).click()
        confirm = wait(driver).until(ec.visibility_of_element_located((By.ID, "volumes-confirm")))
        assert "deletes everything in: cache." in confirm.text, confirm.text
        assert "home" not in confirm.text and "workspace" not in confirm.text, confirm.text
        assert reset.text == "Delete 1 volume(s)"
        assert existing_volumes(engine, hub, vera) == set(KEYS)  # the first click deletes nothing
        shot(driver, "volumes-2-confirmation")

        reset.click()
        wait(driver, 90).until(ec.text_to_be_present_in_element((By.ID, "volumes-result"), "Reset: cache"))
        result = driver.find_element(By.CSS_SELECTOR, "#volumes-result .alert")
        assert "alert-success" in result.get_attribute("class"), result.text
        # The list is reloaded after the reset: the cache volume no longer exists.
        wait(driver).until(ec.invisibility_of_element_located((By.ID, "volume-cache")))
        assert driver.find_elements(By.ID, "volume-home") and driver.find_elements(By.ID, "volume-workspace")
        shot(driver, "volumes-3-result")
    finally:
        shot(driver, "volumes-9-last-state")

    assert existing_volumes(engine, hub, vera) == {"home", "workspace"}


def test_restart_my_server_from_the_home_page(
    hub: Hub, engine: docker.DockerClient, vera: str, driver: webdriver.Chrome
) -> None:
    hub.start_server(vera)
    before = engine.containers.get(hub.container_name(vera)).id
    try:
        sign_in(driver, hub, vera)
        button = wait(driver).until(ec.element_to_be_clickable((By.ID, "restart-server")))
        assert button.text == "Restart My Server"
        assert not driver.find_elements(By.ID, "manage-volumes")  # only for a stopped server
        shot(driver, "restart-1-home")

        button.click()
        status = (By.ID, "self-service-status")
        wait(driver).until(ec.text_to_be_present_in_element(status, "Restarting your server"))
        assert not button.is_enabled()  # no second restart while one runs
        wait(driver, 120).until(ec.text_to_be_present_in_element(status, "restarted and is ready"))
        alert = driver.find_element(By.CSS_SELECTOR, "#self-service-status .alert")
        assert "alert-success" in alert.get_attribute("class"), alert.text
        assert button.is_enabled()
        shot(driver, "restart-2-result")
    finally:
        shot(driver, "restart-9-last-state")

    server = hub.api("GET", f"users/{vera}").json()["servers"].get("")
    assert server is not None and server["ready"], server
    assert engine.containers.get(hub.container_name(vera)).id != before
    hub.stop_server(vera)
