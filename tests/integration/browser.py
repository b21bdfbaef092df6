"""A real headless Chromium for the browser tests: its start, screenshots, waits, signing in
through NativeAuthenticator's form, and what the tests look for in JupyterLab's pages.
Screenshots go to `test-artifacts/browser/`, also when a test fails."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.harness import PASSWORD, ROOT, Hub

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = ROOT / "test-artifacts" / "browser"
HOME = "/hub/home"


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


def shot(browser: webdriver.Chrome, name: str) -> None:
    """Save a screenshot; never raises (it also runs while a failure is on its way out)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(WebDriverException):
        browser.save_screenshot(str(SHOTS / f"{name}.png"))


def wait(browser: webdriver.Chrome, seconds: float = 15) -> WebDriverWait:
    return WebDriverWait(browser, seconds, poll_frequency=0.1)


def sign_in(browser: webdriver.Chrome, hub: Hub, user: str, next_path: str | None = None) -> None:
    """Through NativeAuthenticator's form, landing on `next_path`; without one, on the home
    page, loaded (`next` keeps the login from starting the server: by default JupyterHub
    sends a user whose server is stopped to /hub/spawn)."""
    browser.get(f"{hub.url}hub/login?next={quote(next_path or HOME, safe='')}")
    wait(browser).until(ec.visibility_of_element_located((By.ID, "username_input"))).send_keys(user)
    browser.find_element(By.ID, "password_input").send_keys(PASSWORD)
    browser.find_element(By.ID, "login_submit").click()
    if next_path is None:
        wait(browser).until(ec.presence_of_element_located((By.ID, "self-service")))
        browser.get(f"{hub.url}{HOME.lstrip('/')}")
        wait(browser).until(ec.presence_of_element_located((By.ID, "self-service")))


def toast_with(browser: webdriver.Chrome, text: str) -> WebElement | None:
    """The visible JupyterLab toast (react-toastify) that shows `text`, if any."""
    for toast in browser.find_elements(By.CSS_SELECTOR, ".Toastify__toast"):
        with contextlib.suppress(StaleElementReferenceException):
            if text in toast.text and toast.is_displayed():
                return toast
    return None


def in_viewport(browser: webdriver.Chrome, element: WebElement) -> bool:
    return browser.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth && r.bottom <= window.innerHeight;",
        element,
    )
