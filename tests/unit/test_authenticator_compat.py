"""NativeAuthenticator's login on the installed JupyterHub (6.x by default, 5.5.x in
`make test-compat`): the handler the platform serves at /hub/login gets through a login."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler

from hub_config import authenticator
from hub_config.authenticator import PlatformAuthenticator, hub_has_statsd, login_handler


class _HubStatsd:
    """JupyterHub 5's statsd client when none is configured (its handlers' `self.statsd`)."""

    def timer(self, name: str) -> Any:
        return SimpleNamespace(start=lambda: SimpleNamespace(stop=lambda send=True: None))


def post_login(handler_class: type) -> str:
    """Run the handler's POST /hub/login with a valid user, past everything but the handler's
    own code (the form, the hub's login, the redirect are stand-ins); the redirect target."""

    class Probe(handler_class):
        # What a 5.x hub's application holds; a 6.x hub has no `statsd` to read it from.
        application = SimpleNamespace(settings={"statsd": _HubStatsd()})
        request = SimpleNamespace(arguments={"username": [b"alice"], "password": [b"pw"]})
        redirected: str = ""

        def get_argument(self, name: str, default: Any = None, strip: bool = True) -> str:
            return self.request.arguments[name][0].decode()

        async def login_user(self, data: dict[str, str]) -> Any:
            return SimpleNamespace(name=data["username"])

        def get_next_url(self, user: Any = None, default: Any = None) -> str:
            return f"/hub/user/{user.name}/"

        def redirect(self, url: str, *args: Any, **kwargs: Any) -> None:
            self.redirected = url

    probe = Probe.__new__(Probe)  # no tornado application: only the code under test runs
    asyncio.run(probe.post())
    return probe.redirected


def test_the_platforms_login_handler_logs_in_on_this_hub() -> None:
    assert post_login(login_handler()) == "/hub/user/alice/"


def test_the_platform_serves_that_handler_at_login() -> None:
    auth = PlatformAuthenticator.__new__(PlatformAuthenticator)  # no hub database: no admin bootstrap
    handlers = dict(auth.get_handlers(None))
    assert handlers["/login"] is login_handler()
    assert len(handlers) == len(NativeAuthenticator.get_handlers(auth, None))  # only the login one replaced


@pytest.mark.skipif(hub_has_statsd(), reason="JupyterHub 5.x has statsd: NativeAuthenticator's handler works as it is")
def test_without_the_shim_login_fails_on_jupyterhub_6(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the shim is for: NativeAuthenticator 1.3's own handler on JupyterHub 6."""
    with pytest.raises(AttributeError, match="statsd"):
        post_login(NativeLoginHandler)
    monkeypatch.setattr(authenticator, "hub_has_statsd", lambda: True)  # the shim off
    with pytest.raises(AttributeError, match="statsd"):
        post_login(login_handler())


@pytest.mark.skipif(not hub_has_statsd(), reason="only JupyterHub 5.x has statsd")
def test_on_jupyterhub_5_nativeauthenticators_handler_is_served_unchanged() -> None:
    assert login_handler() is NativeLoginHandler
