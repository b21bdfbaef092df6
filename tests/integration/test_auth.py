"""NativeAuthenticator over HTTP: sign-up, approval by the admin, lockout."""

from __future__ import annotations

from tests.harness import PASSWORD, Hub


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
    assert "has not been authorized" in error

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
    assert session is None and "has not been authorized" in error


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
