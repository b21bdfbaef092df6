"""The operators' Usage page in a real headless Chromium, on the session's platform.

Server time is made by running real labs briefly: `use-ann` (group `use-a`) and `use-bob`
(groups `use-a` and `use-b`) each start their server and stop it, so the ledger's sessions
are the hub's own. Storage is the one figure seeded by hand: the reconciler surveys volumes
every STORAGE_SURVEY_SECONDS (15 minutes by default, longer than this module), so the test
records one survey of two other members' home volumes (`use-cat` in use-a: 3 GiB, `use-dan`
in use-b: 1 GiB) in the hub database with the ledger's own `record_storage`, as the survey
would. Those volumes do not exist on the engine, so a real survey that happens to run
meanwhile cannot replace their rows.

1. a user without the read scope gets 403 from the page, its JSON and its CSVs, and has no
   Usage link;
2. the admin's page draws its three charts (Chart.js instances with the two users and
   groups in their data, canvases with pixels on them); screenshot `usage-page.png` in
   test-artifacts/browser/;
3. each CSV download has its header and the users' rows, the range as the page asked.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from reconciler.api.grouppolicy import GroupPolicySpec
from reconciler.store import Store
from reconciler.usage.ledger import UsageLedger
from tests.harness import Hub
from tests.helpers import apply, remove
from tests.integration.browser import shot, sign_in, wait

USERS = {"use-ann": ["use-a"], "use-bob": ["use-a", "use-b"]}  # run a lab
STORED = {"use-cat": ["use-a"], "use-dan": ["use-b"]}  # only a (seeded) volume
GIB = 1024**3
SIZES = {"use-cat": 3 * GIB, "use-dan": GIB}
RUN_SECONDS = 3.0
# GroupPolicy's `storage` soft limits (per volume kind) come with the quotas; where the field
# exists, use-a's members get 2 GiB on home and the page shows cat's 3 GiB at 150 %.
HAS_STORAGE_LIMITS = "storage" in GroupPolicySpec.model_fields


def seed_storage(hub: Hub) -> None:
    """One survey of cat's and dan's home volumes, recorded as the storage survey records it."""
    store = Store(f"sqlite:///{hub.state_dir.resolve() / 'jupyterhub.sqlite'}")
    try:
        sizes = [(hub.volume_name(user, "home"), user, "home", size) for user, size in SIZES.items()]
        assert UsageLedger(store).record_storage(sizes, datetime.now(UTC)) == len(SIZES)
    finally:
        store.close()


@pytest.fixture(scope="module")
def used(hub: Hub, admin_session: requests.Session) -> Iterator[requests.Session]:
    """The users, their groups, a short real run of ann's and bob's labs, the seeded survey;
    yields ann's signed-in session (she has no operator scope)."""
    ann = hub.approved_user(admin_session, "use-ann")
    for user in ("use-bob", *STORED):
        hub.create_user(user)
    for group in ("use-a", "use-b"):
        assert hub.api("POST", f"groups/{group}").status_code in (201, 409)
        members = [u for u, groups in (USERS | STORED).items() if group in groups]
        assert hub.api("POST", f"groups/{group}/users", json={"users": members}).status_code == 200
    if HAS_STORAGE_LIMITS:
        apply(hub, "GroupPolicy", "use-a-storage", {"groups": ["use-a"], "storage": {"home": {"softLimit": "2G"}}})
    for user in USERS:
        hub.start_server(user)
    time.sleep(RUN_SECONDS)
    for user in USERS:
        hub.stop_server(user)
    seed_storage(hub)
    yield ann
    ann.close()
    if HAS_STORAGE_LIMITS:
        hub.hubctl("delete", "grouppolicy", "use-a-storage")
    remove(hub, groups=["use-a", "use-b"])


def test_1_not_for_users_without_the_read_scope(hub: Hub, used: requests.Session) -> None:
    for path in ("hub/usage", "hub/usage/top-users.csv", "hub/api/usage-charts"):
        r = used.get(hub.url + path, timeout=30)
        assert r.status_code == 403, (path, r.status_code, r.text[:200])
        assert "use-bob" not in r.text
    home = used.get(hub.url + "hub/home", timeout=30)
    assert home.status_code == 200 and 'id="nav-usage"' not in home.text


def chart_data(driver: webdriver.Chrome) -> dict:
    return driver.execute_script(
        "const out = {};"
        "for (const [k, c] of Object.entries(window.usageCharts)) {"
        "  out[k] = {labels: c.data.labels, datasets: c.data.datasets.map(d => ({label: d.label, data: d.data}))};"
        "}"
        "return out;"
    )


def drawn(driver: webdriver.Chrome, canvas_id: str) -> int:
    """How many pixels of the canvas are not transparent (0: nothing was drawn)."""
    return driver.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i]) n++;"
        "return n;",
        canvas_id,
    )


def test_2_the_page_draws_its_charts(hub: Hub, used: requests.Session, driver: webdriver.Chrome) -> None:
    try:
        sign_in(driver, hub, "admin", "/hub/usage")
        wait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#usage-panel[data-loaded='true']")))
        assert driver.find_element(By.ID, "nav-usage").is_displayed()
        data = chart_data(driver)
        assert set(data) == {"serverHours", "topUsers", "storage"}, data

        groups = {d["label"]: d["data"] for d in data["serverHours"]["datasets"]}
        assert {"use-a", "use-b"} <= set(groups), groups
        # Both ran in use-a; only bob in use-b: a's hours at least b's, both more than nothing.
        assert sum(groups["use-a"]) >= sum(groups["use-b"]) > 0, groups

        top = dict(zip(data["topUsers"]["labels"], data["topUsers"]["datasets"][0]["data"], strict=True))
        assert top["use-ann"] > 0 and top["use-bob"] > 0, top

        sizes = dict(zip(data["storage"]["labels"], data["storage"]["datasets"][0]["data"], strict=True))
        assert sizes["use-cat · home"] == pytest.approx(3) and sizes["use-dan · home"] == pytest.approx(1), sizes
        cat = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#storage-table tr[data-user='use-cat'] td")]
        dan = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#storage-table tr[data-user='use-dan'] td")]
        assert cat[:3] == ["use-cat", hub.volume_name("use-cat", "home"), "3.0 GiB"], cat
        limits = dict(zip(data["storage"]["labels"], data["storage"]["datasets"][1]["data"], strict=True))
        assert dan[3] == "none" and limits["use-dan · home"] is None, (dan, limits)  # use-b has no limit
        if HAS_STORAGE_LIMITS:
            assert cat[3:5] == ["2.0 GiB", "150 %"], cat
            assert limits["use-cat · home"] == pytest.approx(2), limits
        else:
            assert cat[3] == "none" and limits["use-cat · home"] is None, limits

        for canvas in ("server-hours-chart", "top-users-chart", "storage-chart"):
            assert drawn(driver, canvas) > 1000, f"{canvas} is blank"
        link = driver.find_element(By.ID, "top-users-csv").get_attribute("href")
        assert link.endswith("/hub/usage/top-users.csv?since=30d"), link
        # The whole page in one picture: the window as tall as the document.
        height = driver.execute_script("return document.documentElement.scrollHeight;")
        driver.set_window_size(1280, min(int(height) + 200, 4000))  # + the window frame
        shot(driver, "usage-page")
    except Exception:
        shot(driver, "usage-page-failed")
        raise


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_3_each_chart_downloads_as_csv(hub: Hub, used: requests.Session, admin_session: requests.Session) -> None:
    r = admin_session.get(hub.url + "hub/usage/top-users.csv?since=1d", timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    table = rows_of(r.text)
    assert table[0] == ["user", "groups", "serverHours", "cpuHours", "memoryGiBHours", "gpuHours", "storageBytes"]
    by_user = {row[0]: row for row in table[1:]}
    assert by_user["use-bob"][1] == "use-a use-b" and by_user["use-ann"][1] == "use-a", by_user
    for user in USERS:
        # At least the seconds the test waited with the server up; at most the module's run.
        assert (RUN_SECONDS - 1) / 3600 <= float(by_user[user][2]) < 0.5, by_user[user]
    assert int(by_user["use-cat"][6]) == SIZES["use-cat"] and float(by_user["use-cat"][2]) == 0, by_user["use-cat"]

    hours = rows_of(admin_session.get(hub.url + "hub/usage/server-hours.csv?since=1d", timeout=30).text)
    assert hours[0][0] == "time" and {"use-a", "use-b"} <= set(hours[0]), hours[0]
    assert len(hours) == 1 + 24 or len(hours) == 1 + 25, len(hours)  # hourly bars over one day

    storage = rows_of(admin_session.get(hub.url + "hub/usage/storage.csv", timeout=30).text)
    assert storage[0] == ["user", "volume", "kind", "bytes", "softLimit", "percent", "surveyed"]
    assert [hub.volume_name("use-cat", "home"), "home", str(SIZES["use-cat"])] in [r[1:4] for r in storage[1:]]

    bad = admin_session.get(hub.url + "hub/usage/top-users.csv?since=tomorrow", timeout=30)
    assert bad.status_code == 400


def test_4_the_vendored_chart_js_is_served_by_the_hub(hub: Hub) -> None:
    path = Path(__file__).resolve().parents[2] / "hub_config/static/vendor/chart.js/chart.umd.min.js"
    r = requests.get(hub.url + "hub/platform-static/vendor/chart.js/chart.umd.min.js", timeout=30)
    assert r.status_code == 200 and r.content == path.read_bytes()
    assert r.headers["Content-Type"].startswith(("application/javascript", "text/javascript"))
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    outside = requests.get(hub.url + "hub/platform-static/%2e%2e/handlers/usage_page.py", timeout=30)
    assert outside.status_code in (403, 404) and b"usage_data" not in outside.content
