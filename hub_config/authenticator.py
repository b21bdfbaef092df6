"""NativeAuthenticator with the platform's rules.

- **No first-come admin.** The admin account (`JUPYTERHUB_ADMIN`) is created when the hub
  starts, if it does not exist, with the password in `JUPYTERHUB_ADMIN_PASSWORD`, or else a
  one-time password generated into the state folder (`admin-password`, mode 0600), which
  `make up` prints. Signing up under the admin's name is refused: an account of that name
  can only come from here.
- **Usernames follow the platform's rule** (`vocabulary.naming.USERNAME_PATTERN`), the same
  the resources and the settings use: no braces, spaces, slashes or control characters.
- **The login and sign-up pages are the platform's** (`signin.py`): rate-limited per client
  address, and a failed login never tells an unapproved account's right password from a
  wrong one. NativeAuthenticator 1.3's login handler also timed the login with the hub's
  statsd client, which JupyterHub 6 removed; the platform's does not. The upstream fixes:
  docs/nativeauthenticator-jupyterhub6.md.
- **A renamed user's old name is held** (`RENAME_HOLD_DAYS`, docs/users.md): it neither signs
  in nor signs up until the hold ends, and after that while a GroupMembership, a Roster or
  the admin setting still names it; and the sign-up page answers for it as for any taken
  name: exactly as for a fresh sign-up awaiting approval (`signin.py`).
- **Rosters** (docs/roster.md): a sign-up under a name a Roster lists is approved at once; a
  name the platform removed cannot sign up or log in; NativeAuthenticator's record is read
  fresh at every look (the reconciler approves and un-approves in the same table); and
  JupyterHub's own admin delete is caught (`delete_user`): the name is refused from then on
  and an event names the volumes kept, so none is orphaned unsaid.
- **bcrypt off the event loop**: a sign-up (its checks against the store, bcrypt, the record)
  runs in a worker thread with the store's own session (`sign_up`); a login's password check
  runs in a worker thread, and the attempt counts towards the account's lockout before it
  starts, so concurrent attempts on one account are not each checked against a count that
  has not caught up yet.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path
from typing import Any

import bcrypt
from jupyterhub.handlers import BaseHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.handlers import SignUpHandler as NativeSignUpHandler
from nativeauthenticator.orm import UserInfo
from tornado import web

from reconciler import user_records
from vocabulary.settings import Settings, get_settings

from .accounts import accounts, hub_deleted
from .backends import get_store
from .signin import TAKEN, PlatformLoginHandler, PlatformSignUpHandler

PASSWORD_FILE = "admin-password"
ONE_TIME_EXPIRED = (
    "This one-time password has expired (after {days:g} days unused). Ask your administrator for a new one."
)


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


def hub_has_statsd() -> bool:
    """JupyterHub 5.x gives every handler `self.statsd`; 6.0 removed it (its upgrade notes)."""
    return hasattr(BaseHandler, "statsd")


# NativeAuthenticator's handler -> the platform's (the others are served as they are).
PLATFORM_HANDLERS: dict[type, type] = {
    NativeLoginHandler: PlatformLoginHandler,
    NativeSignUpHandler: PlatformSignUpHandler,
}
_DUMMY_HASH: list[bytes] = []  # a hash to check a password against when there is no account


def dummy_hash() -> bytes:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt()))
    return _DUMMY_HASH[0]


def password_matches(password: str, hashed: bytes) -> bool:
    """bcrypt's own constant-time check (a worker thread's work: ~0.2 s of CPU)."""
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:  # not a bcrypt hash
        return False


def check_without_account(password: str) -> bool:
    """The same work as a real check, for a name with no account (in a worker thread too)."""
    return password_matches(password, dummy_hash())


def name_held(name: str) -> bool:
    """The old name of a renamed user, within RENAME_HOLD_DAYS or while anything still names
    it, the hub's admin_users among them (or a rename's coming name)."""
    return user_records.held(get_store(), name, admins={get_settings().admin})


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
        return [(path, PLATFORM_HANDLERS.get(handler, handler)) for path, handler in super().get_handlers(app)]

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        """NativeAuthenticator's check (lockout, approval, password, 2FA) with bcrypt in a
        worker thread: the hub's event loop serves everyone else meanwhile. An unknown name
        costs the same bcrypt as a known one, so the time taken tells nothing either."""
        username = self.normalize_username(data.get("username") or "")
        password = data.get("password") or ""
        user = self.get_user(username)
        if user is None or await asyncio.to_thread(name_held, username):
            await asyncio.to_thread(check_without_account, password)
            return None
        if self.allowed_failed_logins:
            if self.is_blocked(username):
                return None
            self.add_login_attempt(username)  # counted before the check; a success clears it
        hashed = bytes(user.password)
        valid = await asyncio.to_thread(password_matches, password, hashed)
        checks = [user.is_authorized, valid]
        if user.has_2fa:
            checks.append(user.is_valid_token(data.get("2fa")))
        if all(checks):
            days = get_settings().one_time_password_days
            if await asyncio.to_thread(accounts().one_time_expired, username, days):
                # Only the holder of this random password gets here: saying so tells nobody else anything.
                raise web.HTTPError(403, ONE_TIME_EXPIRED.format(days=days))
            self.successful_login(username)
            return username
        return None

    def get_user(self, username: str) -> Any:
        """NativeAuthenticator's record, as the database has it now (not a copy the session
        loaded earlier: the reconciler approves and refuses in the same table)."""
        name = self.normalize_username(username)
        return self.db.query(UserInfo).filter(UserInfo.username == name).populate_existing().first()

    def taken(self, name: str) -> bool:
        """Signing up as `name` (normalized) cannot make an account: it has one, it is the
        admin's, it is held after a rename, or the platform removed it. The store's session,
        not the hub's: a worker thread's work (`sign_up`)."""
        if name == get_settings().admin or user_records.signed_up(get_store(), name):
            return True
        return name_held(name) or accounts().refused(name)

    def sign_up(self, username: str, password: str, **kwargs: Any) -> Any:
        """NativeAuthenticator's `create_user`, for a worker thread: the same checks, bcrypt and
        record (`UserInfo`), written through the platform's store session (the hub's is the
        event loop's, and JupyterHub deprecates authenticators sharing it); a name a Roster lists
        is approved at once (no approval e-mail). `TAKEN` for a name that cannot make an
        account (`taken`), None for a sign-up NativeAuthenticator would refuse."""
        name = self.normalize_username(username)
        if self.taken(name):
            return TAKEN
        if not self.validate_username(name) or not self.is_password_strong(password) or not self.enable_signup:
            return None
        infos = {"username": name, "password": bcrypt.hashpw(password.encode(), bcrypt.gensalt()), **kwargs}
        approved = self.open_signup or name in self.get_authed_users() or accounts().pre_approved(name)
        try:
            info = UserInfo(**infos, is_authorized=bool(approved))
        except AssertionError:  # its own checks (the e-mail)
            return None
        if self.allow_self_approval_for and not approved and re.match(self.allow_self_approval_for, info.email):
            self.send_approval_email(info.email, self.generate_approval_url(name))
            info.login_email_sent = True
        with get_store().session() as s:
            s.add(info)
        return info

    def create_user(self, username: str, password: str, **kwargs: Any) -> Any:
        """NativeAuthenticator's contract (its own handlers call it): the record made, or None
        (refused: the admin's name, a held or removed name, an existing account). The platform's
        sign-up page calls `sign_up` in a worker thread instead."""
        created = self.sign_up(username, password, **kwargs)
        if created is TAKEN:
            self.log.warning("Refused a sign-up as %s: taken, the admin's, held or removed", username)
            return None
        return created

    async def delete_user(self, user: Any) -> None:
        """JupyterHub's own delete (its admin page, `DELETE /hub/api/users/NAME`): the
        platform's removals pass through here too and are left alone; any other is recorded."""
        await hub_deleted(user.name)
        super().delete_user(user)
