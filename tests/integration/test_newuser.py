"""Found by trying the platform as a new user would (issue 22), against the session's hub,
started by `scripts/up.sh` as `make up` starts it:

- the test PostgreSQL server of `make test` starts although `make up` made the state folder
  private (0700): `make up` then `make test`, the README's order;
- `hubctl wait --for=phase=Succeeded` on a one-shot that ended Failed exits 1 at once, naming
  the phase, instead of waiting out its timeout; the hub's wait endpoint answers at once too;
- the docs' self-service reset with a backup first, sent as written, is accepted (not 405),
  and the request it records is cancelled by DELETE on its URL.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from tests.harness import ROOT, Hub, wait_for


def test_make_test_postgres_starts_in_a_state_folder_of_make_up(hub: Hub) -> None:
    assert stat.S_IMODE(hub.state_dir.stat().st_mode) == 0o700  # as up.sh leaves it
    env = {k: v for k, v in os.environ.items() if k != "JHDS_TEST_POSTGRES_URL"}
    env["JUPYTERHUB_STATE_DIR"] = str(hub.state_dir)
    script = str(ROOT / "scripts/postgres.sh")
    try:
        result = subprocess.run([script], env=env, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stderr
        url = make_url(result.stdout.strip()).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        subprocess.run([script, "remove"], env=env, capture_output=True, timeout=120, check=False)


def failed_restart(hub: Hub, user: str) -> str:
    """A ServerRestart of a user whose server does not run: it ends Failed (NotRunning)."""
    hub.create_user(user)
    name = f"restart-{user}-{time.monotonic_ns()}"
    path = hub.state_dir / f"{name}.yaml"
    path.write_text(
        f"apiVersion: jupyterhub-ds/v1\nkind: ServerRestart\nmetadata: {{name: {name}}}\nspec: {{user: {user}}}\n"
    )
    applied = hub.hubctl("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    return name


def test_wait_for_a_phase_a_failed_one_shot_never_reaches_exits_at_once(hub: Hub) -> None:
    name = failed_restart(hub, "newuser-wait")
    ended = hub.hubctl("wait", f"serverrestart/{name}", "--for=phase=Failed", "--timeout=90s", timeout=120)
    assert ended.returncode == 0, ended.stderr

    started = time.monotonic()
    waited = hub.hubctl("wait", f"serverrestart/{name}", "--for=phase=Succeeded", "--timeout=60s", timeout=120)
    took = time.monotonic() - started
    assert waited.returncode == 1, waited.stdout + waited.stderr
    assert took < 15, f"waited {took:.1f} s for a phase that cannot come"
    assert f"serverrestart/{name}: it ended Failed (NotRunning: " in waited.stderr
    assert "so phase=Succeeded will not hold" in waited.stderr

    started = time.monotonic()
    r = hub.api("GET", f"resources/serverrestart/{name}/wait", params={"for": "phase=Succeeded", "timeout": "20"})
    assert r.status_code == 200 and time.monotonic() - started < 10, r.text
    assert r.json()["met"] is False and r.json()["never"].startswith("it ended Failed")


def doc_command(doc: str, pattern: str) -> str:
    """The one line of a doc's shell examples matching `pattern`, as written."""
    lines = [line for line in (ROOT / doc).read_text().splitlines() if re.search(pattern, line)]
    assert len(lines) == 1, lines
    return lines[0]


def test_the_docs_reset_with_a_backup_first_is_accepted_and_can_be_cancelled(hub: Hub) -> None:
    user = "newuser-doc"
    hub.create_user(user)
    command = doc_command("docs/backups.md", r"^curl .*volume-resets .*backupFirst")
    assert "/users/alice/" in command
    command = command.replace("/users/alice/", f"/users/{user}/") + " -s -w '\\n%{http_code}'"
    result = subprocess.run(
        ["bash", "-c", command],
        env={**os.environ, "HUB": hub.url.rstrip("/"), "T": hub.token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    body, _, code = result.stdout.rpartition("\n")
    assert code == "202", result.stdout + result.stderr
    url = re.search(r'"url": "([^"]+)"', body).group(1)
    name = url.rsplit("/", 1)[1]
    assert hub.api("GET", f"users/{user}/volume-resets/{name}").json()["phase"] in ("Pending", "Running")

    cancel = doc_command("README.md", r"^curl -X DELETE .*volume-resets/<name>")
    cancel = cancel.split("#")[0].replace("/users/alice/", f"/users/{user}/").replace("<name>", name)
    result = subprocess.run(
        ["bash", "-c", cancel + " -s -o /dev/null -w '%{http_code}'"],
        env={**os.environ, "HUB": hub.url.rstrip("/"), "T": hub.token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout in ("204", "409"), result.stdout + result.stderr  # 409: it finished first
    if result.stdout == "204":
        assert hub.api("GET", f"users/{user}/volume-resets/{name}").status_code == 404
    # The backup it asked for first ends by itself; nothing of this user stays pending.
    wait_for(
        lambda: not hub.api("GET", f"users/{user}/volume-resets").json()["items"],
        60,
        "no reset of the user pending",
        interval=0.5,
    )


@pytest.fixture(autouse=True)
def _no_stray_yaml(hub: Hub):
    yield
    for path in Path(hub.state_dir).glob("restart-newuser-*.yaml"):
        path.unlink(missing_ok=True)
