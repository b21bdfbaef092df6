"""NativeAuthenticator with the platform's rules.

- **No first-come admin.** The admin account (`JUPYTERHUB_ADMIN`) is created when the hub
  starts, if it does not exist, with the password in `JUPYTERHUB_ADMIN_PASSWORD`, or else a
  one-time password generated into the state folder (`admin-password`, mode 0600), which
  `make up` prints. Signing up under the admin's name is refused: an account of that name
  can only come from here.
- **Usernames follow the platform's rule** (`vocabulary.naming.USERNAME_PATTERN`), the same
  the resources and the settings use: no braces, spaces, slashes or control characters.
- **NativeAuthenticator 1.3 on JupyterHub 6**: its login handler times the login with the
  hub's statsd client, which JupyterHub 6 removed. On a hub without it, the login handler is
  NativeAuthenticator's own with a timer that does nothing (`login_handler`); on 5.x it is
  unchanged. The upstream fix: docs/nativeauthenticator-jupyterhub6.md.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import bcrypt
from jupyterhub.handlers import BaseHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.orm import UserInfo

from vocabulary.settings import Settings, get_settings

PASSWORD_FILE = "admin-password"


def one_time_password(settings: Settings) -> str:
    """The generated admin password: read back if it was made before, else made and kept
    (0600) in the state folder for `make up` to print."""
    path = Path(settings.state_dir).resolve() / PASSWORD_FILE
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


class _NoTimer:
    """What NativeAuthenticator's login calls of a statsd timer: `start()`, `stop(send=...)`."""

    def start(self) -> _NoTimer:
        return self

    def stop(self, send: bool = True) -> None:
        pass


class _NoStatsd:
    def timer(self, name: str) -> _NoTimer:
        return _NoTimer()


def hub_has_statsd() -> bool:
    """JupyterHub 5.x gives every handler `self.statsd`; 6.0 removed it (its upgrade notes)."""
    return hasattr(BaseHandler, "statsd")


class StatsdFreeLoginHandler(NativeLoginHandler):
    """NativeAuthenticator's login handler on a hub without statsd; the hub's Prometheus
    metrics still count the logins."""

    statsd = _NoStatsd()


def login_handler() -> type[NativeLoginHandler]:
    """The login handler for this hub: NativeAuthenticator's own while the hub has statsd."""
    return NativeLoginHandler if hub_has_statsd() else StatsdFreeLoginHandler


class PlatformAuthenticator(NativeAuthenticator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ensure_admin(get_settings())

    def ensure_admin(self, settings: Settings) -> None:
        """Create the admin account if it does not exist (get-or-create; never changes it)."""
        if self.user_exists(settings.admin):
            return
        if settings.admin_password is not None:
            password, where = settings.admin_password.get_secret_value(), "JUPYTERHUB_ADMIN_PASSWORD"
        else:
            password, where = one_time_password(settings), str(Path(settings.state_dir).resolve() / PASSWORD_FILE)
        encoded = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        self.db.add(UserInfo(username=settings.admin, password=encoded, is_authorized=True))
        self.db.commit()
        self.log.warning("Created the admin account %s (password: %s)", settings.admin, where)

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        login = login_handler()
        return [
            (path, login if handler is NativeLoginHandler else handler) for path, handler in super().get_handlers(app)
        ]

    def create_user(self, username: str, password: str, **kwargs: Any) -> Any:
        """Sign-up: refused for the admin's name (that account is made at start-up only)."""
        if self.normalize_username(username) == get_settings().admin:
            self.log.warning("Refused a sign-up as the admin %s", get_settings().admin)
            return None
        return super().create_user(username, password, **kwargs)
