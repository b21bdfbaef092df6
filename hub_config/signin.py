"""The platform's sign-in pages: NativeAuthenticator's login and sign-up handlers with a
per-client-address rate limit (429 with Retry-After; docs/security.md), and a login whose
answer never tells an account not yet approved from a wrong password.

NativeAuthenticator 1.3's login handler, after a failed login, checks the password again
and answers "User X has not been authorized by an administrator yet" when it was right:
the password of an unapproved account can be guessed with no lockout (the check runs even
for a locked-out account), and each failed login ran bcrypt twice on the hub's event loop.
Here a failed login gets one generic message, and the only password check is the
authenticator's, in a worker thread (`PlatformAuthenticator.authenticate`). The handler
also no longer uses the hub's statsd client, which JupyterHub 6 removed
(docs/nativeauthenticator-jupyterhub6.md). A login with the one-time password a Roster
gave lands on the change-password page, every time until the password is the user's own
(docs/roster.md).

NativeAuthenticator's sign-up page answered "this username is already in use" for a taken
name: anyone could list the accounts. Here a taken name (an account, the admin's, one held
after a rename, or one the platform removed) gets the page a fresh sign-up awaiting
approval gets, after the same checks and the same bcrypt work; the existing account is not
touched.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import re
import socket
import time
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import bcrypt
from jupyterhub.utils import url_path_join
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.handlers import SignUpHandler as NativeSignUpHandler
from nativeauthenticator.orm import UserInfo
from tornado import web

from vocabulary.settings import get_settings

from .accounts import CHANGE_PASSWORD, accounts
from .ratelimit import SlidingWindow, client_address, retry_after

LOGIN_ERROR = "Invalid username or password."  # also for an account not approved yet
TAKEN = object()  # the authenticator's `sign_up`: the name cannot make an account (answered as if it had)
RESOLVE_EVERY = 60.0  # seconds between look-ups of the trusted proxies' host names
RESOLVE_TIMEOUT = 2.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """HUB_TRUSTED_PROXIES as networks: addresses and networks as written, host names (the
    compose deployment's `jupyterhub-traefik`) looked up at most once a minute, off the
    event loop; a failed look-up keeps the addresses it had (none at first: fail closed)."""

    def __init__(self, entries: list[str]) -> None:
        self.fixed: list[Network] = []
        self.names: list[str] = []
        for entry in entries:
            try:
                self.fixed.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.append(entry)
        self._resolved: dict[str, list[Network]] = {}
        self._due = 0.0
        self._lock = asyncio.Lock()

    async def networks(self) -> list[Network]:
        if self.names and time.monotonic() >= self._due:
            async with self._lock:
                if time.monotonic() >= self._due:
                    await self._resolve()
                    self._due = time.monotonic() + RESOLVE_EVERY
        return self.fixed + [n for nets in self._resolved.values() for n in nets]

    async def _resolve(self) -> None:
        loop = asyncio.get_running_loop()
        for name in self.names:
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), timeout=RESOLVE_TIMEOUT
                )
            except (OSError, TimeoutError):
                continue  # e.g. Traefik restarting: keep what it was
            self._resolved[name] = [ipaddress.ip_network(info[4][0].split("%", 1)[0]) for info in infos]


@lru_cache(maxsize=1)
def limits() -> dict[str, SlidingWindow]:
    """The hub process's windows, one per form."""
    s = get_settings()
    return {"login": SlidingWindow(s.login_rate_limit), "signup": SlidingWindow(s.signup_rate_limit)}


@lru_cache(maxsize=1)
def trusted_proxies() -> TrustedProxies:
    return TrustedProxies(get_settings().trusted_proxies)


class RateLimited(web.HTTPError):
    def __init__(self, what: str, seconds: int) -> None:
        super().__init__(429, f"Too many {what} attempts from your address. Try again in {seconds} seconds.")
        # JupyterHub's write_error sets these after clearing the headers of the error response.
        self.headers = {"Retry-After": str(seconds)}


class RateLimitedForm:
    """What the two forms share: the client's address, and one attempt taken from its window."""

    request: Any
    log: Any

    async def client_key(self) -> str:
        address = getattr(self.request.connection.context, "address", None)
        peer = address[0] if isinstance(address, tuple) and address else ""
        forwarded = self.request.headers.get_list("X-Forwarded-For")
        return client_address(peer, forwarded, await trusted_proxies().networks())

    async def attempt(self, what: str) -> tuple[str, float]:
        """Take one attempt from the client's window, or refuse with 429; (key, when) to refund it."""
        key = await self.client_key()
        wait, when = limits()[what].acquire(key)
        if wait is not None:
            seconds = retry_after(wait)
            self.log.warning("Refused a %s attempt from %s: over the rate limit (retry in %d s)", what, key, seconds)
            raise RateLimited(what, seconds)
        return key, when


class PlatformLoginHandler(RateLimitedForm, NativeLoginHandler):
    async def post(self) -> None:
        key, when = await self.attempt("login")
        data = {arg: self.get_argument(arg, strip=False) for arg in self.request.arguments}
        user = await self.login_user(data)
        if user:
            limits()["login"].refund(key, when)  # only failed attempts use up the window
            self._jupyterhub_user = user
            if await asyncio.to_thread(accounts().must_change, user.name):
                # Still the one-time password a Roster gave: the user sets their own first.
                self.redirect(url_path_join(self.hub.base_url, CHANGE_PASSWORD))
                return
            self.redirect(self.get_next_url(user))
            return
        # The same answer for a wrong password, an unknown name, a lockout and an account not
        # approved yet, whatever its password: nothing here tells a right password apart.
        html = await self._render(login_error=LOGIN_ERROR, username=data.get("username"))
        self.finish(html)


class PlatformSignUpHandler(RateLimitedForm, NativeSignUpHandler):
    async def post(self) -> None:
        await self.attempt("signup")
        auth = self.authenticator
        if not auth.enable_signup:
            raise web.HTTPError(404)
        if auth.recaptcha_key:  # not the platform's configuration: NativeAuthenticator's own page
            await super().post()
            return
        form = {
            "username": self.get_body_argument("username", strip=False),
            "password": self.get_body_argument("signup_password", strip=False),
            "email": self.get_body_argument("email", "", strip=False),
            "has_2fa": bool(self.get_body_argument("2fa", "", strip=False)),
        }
        matches = form["password"] == self.get_body_argument("signup_password_confirmation", strip=False)
        user = await asyncio.to_thread(auth.sign_up, **form) if matches else None
        if user is TAKEN:
            user = await self.as_if_signed_up(form)
            self.log.info("Sign-up as a taken or held name answered as pending; the account is untouched")
        # Never "already in use", never the admin's "successful": the pending answer for all.
        alert, message = self.get_result_message(user, True, False, matches, False)
        html = await self.render_template(
            "signup.html",
            ask_email=auth.ask_email_on_signup,
            result_message=message,
            alert=alert,
            two_factor_auth=auth.allow_2fa,
            two_factor_auth_user=user.has_2fa if user else "",
            two_factor_auth_value=user.otp_secret if user else "",
            recaptcha_key=auth.recaptcha_key,
            tos=auth.tos,
        )
        self.finish(html)

    async def as_if_signed_up(self, form: dict[str, Any]) -> Any:
        """What a fresh sign-up of this form would have made (its checks, its bcrypt, in a
        worker thread), made of nothing: None where one would have been refused."""
        auth, name, password = (
            self.authenticator,
            self.authenticator.normalize_username(form["username"]),
            form["password"],
        )
        if not auth.validate_username(name) or not auth.is_password_strong(password):
            return None
        await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt())
        try:  # the record's own checks (the e-mail), on an object never added to the database
            UserInfo(username=name, password=b"-", email=form["email"], has_2fa=form["has_2fa"])
        except AssertionError:
            return None
        email_sent = bool(auth.allow_self_approval_for and re.match(auth.allow_self_approval_for, form["email"]))
        secret = base64.b32encode(os.urandom(10)).decode()
        return SimpleNamespace(has_2fa=form["has_2fa"], otp_secret=secret, login_email_sent=email_sent)
