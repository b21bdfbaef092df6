"""NativeAuthenticator over HTTP: sign-up, approval by the admin, login, lockout, password changes,
the admin made at start-up; on JupyterHub 6 (the default) and 5.5 (`make test-compat`)."""

from __future__ import annotations

import os
import re

import requests

from tests.harness import PASSWORD, Hub

NEW_PASSWORD = "another-horse-battery-staple"


def alert(response: requests.Response) -> str:
    """The result message of a NativeAuthenticator page."""
    assert response.status_code == 200, response.status_code
    match = re.search(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', response.text, re.S)
    assert match, response.text[:500]
    return re.sub(r"<[^>]+>|\s+", " ", match.group(1)).strip()


def test_the_hub_runs_the_release_asked_for(hub: Hub) -> None:
    """6.x by default; 5.5.x with HUB_JUPYTERHUB=5.5 (`make test-compat`)."""
    version = requests.get(f"{hub.url}hub/api/", timeout=30).json()["version"]
    assert version.startswith(os.environ.get("HUB_JUPYTERHUB", "6") + "."), version


def test_admin_exists_from_start_up(hub: Hub, admin_session) -> None:
    r = admin_session.get(f"{hub.url}hub/api/user", timeout=30)
    assert r.status_code == 200
    assert r.json()["name"] == "admin"
    assert r.json()["admin"] is True


def test_new_user_waits_for_approval(hub: Hub, admin_session) -> None:
    message = hub.signup("carol")
    assert "admin" in message.lower() or "authoriz" in message.lower(), message
    session, error = hub.login("carol")
    assert session is None
    # The answer to a wrong password: telling "not approved yet" gave away that the password
    # was right (docs/security.md, test_caps.py); the login after approval shows it was.
    assert error == "Invalid username or password."

    hub.approve(admin_session, "carol")
    session, error = hub.login("carol")
    assert session is not None, error
    r = session.get(f"{hub.url}hub/api/user", timeout=30)
    assert r.json()["name"] == "carol"
    assert r.json()["admin"] is False


def test_non_admin_cannot_approve(hub: Hub, admin_session) -> None:
    hub.signup("mallory")
    hub.signup("trent")
    hub.approve(admin_session, "trent")
    trent, _ = hub.login("trent")
    assert trent is not None
    trent.get(f"{hub.url}hub/authorize/mallory", timeout=30)
    session, error = hub.login("mallory")
    assert session is None and error == "Invalid username or password."
    hub.approve(admin_session, "mallory")  # the admin's approval works: she was not approved before
    session, error = hub.login("mallory")
    assert session is not None, error


def test_short_password_is_refused(hub: Hub) -> None:
    message = hub.signup("shorty", password="abc")
    assert "password" in message.lower(), message
    session, _ = hub.login("shorty", password="abc")
    assert session is None


def test_repeated_wrong_passwords_lock_out(hub: Hub, admin_session) -> None:
    hub.signup("dave")
    hub.approve(admin_session, "dave")
    for _ in range(3):
        session, _ = hub.login("dave", password="wrong-password-123")
        assert session is None
    # Locked out: even the right password is refused until the lockout ends.
    session, _ = hub.login("dave", password=PASSWORD)
    assert session is None


def test_a_user_changes_their_password(hub: Hub, admin_session) -> None:
    erin = hub.approved_user(admin_session, "erin")
    wrong = {"old_password": "not-my-password-1", "new_password": NEW_PASSWORD}
    message = alert(hub._form(erin, "change-password", {**wrong, "new_password_confirmation": NEW_PASSWORD}))
    assert "incorrect" in message, message
    right = {"old_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirmation": NEW_PASSWORD}
    message = alert(hub._form(erin, "change-password", right))
    assert "changed successfully" in message, message
    assert hub.login("erin")[0] is None  # the old one no longer works
    session, error = hub.login("erin", password=NEW_PASSWORD)
    assert session is not None, error


def test_the_admin_sets_a_users_password(hub: Hub, admin_session) -> None:
    hub.approved_user(admin_session, "frank")
    data = {"new_password": NEW_PASSWORD, "new_password_confirmation": NEW_PASSWORD}
    message = alert(hub._form(admin_session, "change-password/frank", data))
    assert "changed successfully" in message.lower() or "has been changed" in message.lower(), message
    session, error = hub.login("frank", password=NEW_PASSWORD)
    assert session is not None, error
