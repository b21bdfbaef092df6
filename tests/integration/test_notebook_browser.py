"""The executed data-science notebook in JupyterLab, in a real headless Chromium: the user
signs in, opens the notebook their lab ran (tests/integration/lab_kernel.py), sees the
fit's numbers and the figure; a screenshot goes to test-artifacts/browser/.

On the platform of its own on the ds image that test_notebook.py uses (one `make up` for
both, `own_platforms`), with a user of its own.
"""

from __future__ import annotations

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.harness import Hub
from tests.integration.browser import SHOTS, shot, sign_in, wait
from tests.integration.lab_kernel import Lab, run_analysis
from tests.integration.test_notebook import DS_PLATFORM

USER = "dsuser2"
NOTEBOOK = "analysis.ipynb"


@pytest.fixture(scope="module")
def ds_hub(own_platforms) -> Hub:
    return own_platforms.platform(*DS_PLATFORM)


def test_the_executed_notebook_in_jupyterlab(ds_hub: Hub, driver: webdriver.Chrome) -> None:
    admin, error = ds_hub.login("admin")
    assert admin is not None, error
    session = ds_hub.approved_user(admin, USER)
    admin.close()
    ds_hub.start_server(USER)
    lab = Lab(session, f"{ds_hub.url}user/{USER}/")
    lab.open()
    run_analysis(lab, NOTEBOOK)
    session.close()

    try:
        sign_in(driver, ds_hub, USER)
        driver.get(f"{ds_hub.url}user/{USER}/lab/tree/{NOTEBOOK}")
        # The notebook's outputs as JupyterLab renders them: the figure and the fit.
        figure = wait(driver, 90).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-RenderedImage img"))
        )
        wait(driver, 30).until(lambda d: d.execute_script("return arguments[0].naturalWidth;", figure) > 400)
        outputs = driver.find_element(By.CSS_SELECTOR, ".jp-Notebook").text
        assert "R2=0.99" in outputs and "shape (200, 3)" in outputs, outputs[:2000]
        # The notebook's kernel, by its display name, in the toolbar once it is connected.
        wait(driver, 60).until(
            ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".jp-KernelName"), "Python 3 (data science)")
        )
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", figure)
        shot(driver, "ds-notebook-executed")
        assert (SHOTS / "ds-notebook-executed.png").stat().st_size > 10_000
    finally:
        shot(driver, "ds-notebook-9-last-state")
        ds_hub.stop_server(USER)
