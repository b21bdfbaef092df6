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
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from functools import lru_cache
from typing import Any

from jupyterhub.utils import url_path_join
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.handlers import SignUpHandler as NativeSignUpHandler
from tornado import web

from vocabulary.settings import get_settings

from .accounts import accounts
from .ratelimit import SlidingWindow, client_address, retry_after

LOGIN_ERROR = "Invalid username or password."  # also for an account not approved yet
CHANGE_PASSWORD = "change-password"  # NativeAuthenticator's page, where a one-time password is replaced
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
        await super().post()
