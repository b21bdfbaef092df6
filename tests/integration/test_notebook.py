"""The data-science lab as a user uses it: a real user signs in, opens a notebook in their
lab (jupyterhub-ds/lab:ds) through the proxy with JupyterLab's own protocol (REST, kernel
WebSocket), runs pandas, scikit-learn and matplotlib cells, saves the notebook, and finds it
again in their workspace volume and after a restart.

Runs on a platform of its own on the ds image (label `<session label>-ds`), not the
session's: the rest of the suite spawns the minimal image. test_notebook_browser.py shares it
(`own_platforms`: one `make up` for both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import docker
import pytest
import requests

from tests.harness import Hub
from tests.integration.lab_kernel import KERNEL, PNG_SIGNATURE, Lab, png_of, run_analysis, text_of
from vocabulary import naming

DS_IMAGE = "jupyterhub-ds/lab:ds"
# The platform's name and settings; test_notebook_browser.py asks for the same.
DS_PLATFORM = ("ds", {"DOCKER_NOTEBOOK_IMAGE": DS_IMAGE})
USER = "dsuser1"
NOTEBOOK = "analysis.ipynb"
# A user's own package: a wheel made in the lab (no network), installed with plain `pip install`.
MAKE_WHEEL = r"""
import zipfile
files = {
    "hello_ds.py": "GREETING = 'hello from ~/.local'\n",
    "hello_ds-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: hello-ds\nVersion: 1.0\n",
    "hello_ds-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
with zipfile.ZipFile("/tmp/hello_ds-1.0-py3-none-any.whl", "w") as z:
    for path, text in files.items():
        z.writestr(path, text)
    z.writestr("hello_ds-1.0.dist-info/RECORD", "".join(f"{p},,\n" for p in [*files, "hello_ds-1.0.dist-info/RECORD"]))
"""


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    # Not the session's `engine` fixture: its set-up removes the session platform's containers.
    c = docker.from_env()
    yield c
    c.close()


@pytest.fixture(scope="module")
def ds_hub(own_platforms) -> Hub:
    return own_platforms.platform(*DS_PLATFORM)


@pytest.fixture(scope="module")
def user_session(ds_hub: Hub) -> Iterator[requests.Session]:
    """dsuser1 signed up, approved by the admin and logged in through the forms."""
    admin, error = ds_hub.login("admin")
    assert admin is not None, error
    session = ds_hub.approved_user(admin, USER)
    admin.close()
    yield session
    session.close()


def workspace_file(client: docker.DockerClient, hub: Hub, path: str) -> str:
    """A file of the user's workspace volume, read by a throwaway container (no network)."""
    out = client.containers.run(
        DS_IMAGE,
        ["cat", f"/w/{path}"],
        volumes={hub.volume_name(USER, "workspace"): {"bind": "/w", "mode": "ro"}},
        network_mode="none",
        labels={naming.LABEL_PLATFORM: hub.platform},
        remove=True,
    )
    return out.decode()


def run_as_lab(client: docker.DockerClient, hub: Hub, *command: str) -> str:
    """A command (no shell) as the lab user in the user's container; its output."""
    code, output = client.containers.get(hub.container_name(USER)).exec_run(list(command), user="lab")
    assert code == 0, output.decode()
    return output.decode()


def test_a_users_notebook_runs_the_stack_and_survives_a_restart(
    ds_hub: Hub, client: docker.DockerClient, user_session: requests.Session
) -> None:
    ds_hub.start_server(USER)
    container = client.containers.get(ds_hub.container_name(USER))
    assert DS_IMAGE in container.image.tags, container.image.tags

    lab = Lab(user_session, f"{ds_hub.url}user/{USER}/")
    lab.open()
    specs = lab.api("GET", "kernelspecs").json()
    assert specs["default"] == KERNEL and set(specs["kernelspecs"]) == {KERNEL}, specs
    assert specs["kernelspecs"][KERNEL]["spec"]["display_name"] == "Python 3 (data science)"

    _, (loaded, fitted, figure, versions) = run_analysis(lab, NOTEBOOK)

    # pandas: 200 rows, 3 columns; the means are the data's.
    text = text_of(loaded)
    assert "shape (200, 3) polars (200, 3)" in text, text
    assert re.search(r"x1\s+9\.95", text), text
    # scikit-learn: an almost perfect fit that finds y = 3 x1 - 2 x2 + 5.
    text = text_of(fitted)
    r2 = float(re.search(r"R2=([0-9.]+)", text).group(1))
    assert 0.999 < r2 <= 1.0, text
    coef = [float(v) for v in re.search(r"coef (\S+) (\S+) (\S+)", text).groups()]
    assert coef == pytest.approx([3, -2, 5], abs=0.05), text
    # matplotlib: one inline PNG of a real figure (5 x 3 inches, cropped to its content).
    png = png_of(figure)
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000, png[:16]
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert 400 < width < 600 and 250 < height < 400, (width, height)
    assert re.search(r"numpy=2\.\S+ scipy=1\.\S+ pandas=2\.\S+ polars=1\.\S+", text_of(versions)), text_of(versions)

    # Saved in the workspace volume, with its outputs.
    saved = json.loads(workspace_file(client, ds_hub, NOTEBOOK))
    assert saved["metadata"]["kernelspec"]["name"] == KERNEL
    assert png_of(saved["cells"][2]["outputs"]) == png

    # git is there, for the shell and for jupyterlab-git's server extension.
    assert ds_hub.exec(client, USER, "git --version").startswith("git version 2.")
    r = user_session.get(f"{ds_hub.url}user/{USER}/git/settings", timeout=30)
    assert r.status_code == 200 and r.json().get("gitVersion", "").startswith("2."), r.text

    # A plain `pip install` goes to the home volume (the venv's pip.conf), not the image's venv.
    run_as_lab(client, ds_hub, "python", "-c", MAKE_WHEEL)
    run_as_lab(client, ds_hub, "pip", "install", "--no-index", "/tmp/hello_ds-1.0-py3-none-any.whl")

    # Stop and start: a new container, the same notebook, the user's package still there.
    ds_hub.stop_server(USER)
    ds_hub.start_server(USER)
    assert client.containers.get(ds_hub.container_name(USER)).id != container.id
    lab.open()
    r = lab.api("GET", f"contents/{NOTEBOOK}")
    assert r.status_code == 200, r.text
    cells = r.json()["content"]["cells"]
    assert "R2=" in text_of(cells[1]["outputs"]) and png_of(cells[2]["outputs"]) == png
    mine = run_as_lab(client, ds_hub, "python", "-c", "import hello_ds as h; print(h.__file__, h.GREETING)")
    assert mine.strip() == "/home/lab/.local/lib/python3.11/site-packages/hello_ds.py hello from ~/.local", mine
    ds_hub.stop_server(USER)
