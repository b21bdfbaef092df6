"""The self-service home page in a real headless Chromium: reset a volume, restart a server.

Debian's chromium and chromium-driver (`scripts/browser.sh` installs them); selenium is only
the client, it never downloads a browser or a driver (the driver's path is given, so
selenium-manager is not run). Screenshots of the key steps go to `test-artifacts/browser/`,
also when a test fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.harness import Hub
from tests.integration.browser import shot, sign_in, wait

USER = "vera"
KEYS = ("home", "workspace", "cache")


@pytest.fixture(scope="module")
def vera(hub: Hub, admin_session: requests.Session) -> Iterator[str]:
    """A fresh approved user; her server is stopped at the end."""
    hub.approved_user(admin_session, USER).close()
    yield USER
    if "" in hub.api("GET", f"users/{USER}").json()["servers"]:
        hub.stop_server(USER)


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
