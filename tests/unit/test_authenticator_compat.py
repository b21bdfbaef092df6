"""NativeAuthenticator's login on the installed JupyterHub (6.x by default, 5.5.x in
`make test-compat`): the handler the platform serves at /hub/login gets through a login,
and a failed one never tells an unapproved account's right password from a wrong one."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.handlers import SignUpHandler as NativeSignUpHandler
from tornado.httputil import HTTPHeaders

from hub_config import signin
from hub_config.authenticator import PlatformAuthenticator, hub_has_statsd
from hub_config.signin import LOGIN_ERROR, PlatformLoginHandler, PlatformSignUpHandler
from reconciler.accounts import Accounts
from reconciler.store import Store


class _HubStatsd:
    """JupyterHub 5's statsd client when none is configured (its handlers' `self.statsd`)."""

    def timer(self, name: str) -> Any:
        return SimpleNamespace(start=lambda: SimpleNamespace(stop=lambda send=True: None))


class _Unapproved:
    """NativeAuthenticator's record of an account signed up, not approved; password "right"."""

    is_authorized = False

    def is_valid_password(self, password: str) -> bool:
        return password == "right"


def post_login(handler_class: type, password: str = "pw", logs_in: bool = True) -> tuple[str, str | None]:
    """Run the handler's POST /hub/login, past everything but the handler's own code (the form,
    the hub's login, the redirect, the page are stand-ins): (redirect target, login error)."""

    class Probe(handler_class):
        # What a 5.x hub's application holds; a 6.x hub has no `statsd` to read it from.
        application = SimpleNamespace(settings={"statsd": _HubStatsd()})
        request = SimpleNamespace(
            arguments={"username": [b"alice"], "password": [password.encode()]},
            connection=SimpleNamespace(context=SimpleNamespace(address=("203.0.113.9", 50000))),
            headers=HTTPHeaders(),
        )
        authenticator = SimpleNamespace(get_user=lambda name: _Unapproved())
        log = SimpleNamespace(warning=lambda *a: None)
        redirected: str = ""
        error: str | None = None

        def get_argument(self, name: str, default: Any = None, strip: bool = True) -> str:
            return self.request.arguments[name][0].decode()

        async def login_user(self, data: dict[str, str]) -> Any:
            return SimpleNamespace(name=data["username"]) if logs_in else None

        def get_next_url(self, user: Any = None, default: Any = None) -> str:
            return f"/hub/user/{user.name}/"

        def redirect(self, url: str, *args: Any, **kwargs: Any) -> None:
            self.redirected = url

        async def _render(self, login_error: str | None = None, username: str | None = None) -> str:
            self.error = login_error
            return ""

        def finish(self, chunk: Any = None) -> None:
            pass

    probe = Probe.__new__(Probe)  # no tornado application: only the code under test runs
    asyncio.run(probe.post())
    return probe.redirected, probe.error


@pytest.fixture(autouse=True)
def fresh_limits(tmp_path, monkeypatch) -> None:
    signin.limits.cache_clear()
    # The login asks the platform's accounts (a one-time password?): a store of the test's
    # own, never the developer's `.state` database the default settings name.
    accounts = Accounts(Store(f"sqlite:///{tmp_path}/hub.sqlite"))
    monkeypatch.setattr(signin, "accounts", lambda: accounts)


def test_the_platforms_login_handler_logs_in_on_this_hub() -> None:
    assert post_login(PlatformLoginHandler)[0] == "/hub/user/alice/"


def test_the_platform_serves_its_login_and_signup_handlers() -> None:
    auth = PlatformAuthenticator.__new__(PlatformAuthenticator)  # no hub database: no admin bootstrap
    handlers = dict(auth.get_handlers(None))
    assert handlers["/login"] is PlatformLoginHandler
    assert handlers["/signup"] is PlatformSignUpHandler
    assert issubclass(PlatformSignUpHandler, NativeSignUpHandler)
    assert len(handlers) == len(NativeAuthenticator.get_handlers(auth, None))  # only those two replaced


@pytest.mark.skipif(hub_has_statsd(), reason="JupyterHub 5.x has statsd: NativeAuthenticator's handler works there")
def test_nativeauthenticators_own_login_fails_on_jupyterhub_6() -> None:
    """What the platform's handler is needed for, besides the oracle: NativeAuthenticator 1.3's
    own handler on JupyterHub 6."""
    with pytest.raises(AttributeError, match="statsd"):
        post_login(NativeLoginHandler)


def test_an_unapproved_accounts_right_password_gets_the_wrong_passwords_answer() -> None:
    right = post_login(PlatformLoginHandler, password="right", logs_in=False)
    wrong = post_login(PlatformLoginHandler, password="wrong", logs_in=False)
    assert right == wrong == ("", LOGIN_ERROR)


@pytest.mark.skipif(not hub_has_statsd(), reason="NativeAuthenticator's own handler fails earlier on JupyterHub 6")
def test_nativeauthenticators_own_login_tells_the_right_password() -> None:
    """The oracle the platform's handler closes (on 5.x, where NativeAuthenticator's runs)."""
    _, right = post_login(NativeLoginHandler, password="right", logs_in=False)
    _, wrong = post_login(NativeLoginHandler, password="wrong", logs_in=False)
    assert "has not been authorized" in (right or "")
    assert wrong == LOGIN_ERROR


def test_failed_logins_from_one_address_get_429_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    from vocabulary.settings.hub import Rate

    monkeypatch.setattr(
        signin,
        "get_settings",
        lambda: SimpleNamespace(login_rate_limit=Rate(3, 60), signup_rate_limit=Rate(1, 60), trusted_proxies=[]),
    )
    for _ in range(5):  # successful logins do not count
        post_login(PlatformLoginHandler)
    for _ in range(3):
        post_login(PlatformLoginHandler, logs_in=False)
    with pytest.raises(signin.RateLimited) as refused:
        post_login(PlatformLoginHandler)
    assert refused.value.status_code == 429
    assert 59 <= int(refused.value.headers["Retry-After"]) <= 60
