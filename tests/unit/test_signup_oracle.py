"""The sign-up page never tells a taken name: signing up as an existing account, the admin, a
name held after a rename or one the platform removed gets the page a fresh sign-up awaiting
approval gets, after the same bcrypt work, and the account is not touched. The authenticators
are the real ones (NativeAuthenticator's class and the platform's), on a hub database in a
temporary folder as the hub opens it; NativeAuthenticator 1.3's own handler answers "already
in use" (the test's xfail case). A sign-up's bcrypt and store checks run off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import bcrypt
import pytest
from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import SignUpHandler as NativeSignUpHandler
from sqlalchemy import select
from tornado.httputil import HTTPHeaders
from traitlets.config import Config

from hub_config import accounts, backends, signin
from hub_config.authenticator import PlatformAuthenticator
from hub_config.signin import PlatformSignUpHandler
from reconciler import user_records
from reconciler.accounts import REMOVED
from reconciler.tables import USERS_INFO
from vocabulary import settings as settings_module
from vocabulary.settings import get_settings

PASSWORD = "a-long-password-7"


def hub_config() -> Config:
    """The authenticator's configuration as hub_config/jupyterhub_config.py sets it."""
    c = Config()
    c.NativeAuthenticator.enable_signup = True
    c.NativeAuthenticator.open_signup = False
    c.NativeAuthenticator.minimum_password_length = get_settings().min_password_length
    c.NativeAuthenticator.check_common_password = True
    c.Authenticator.admin_users = {get_settings().admin}
    return c


@pytest.fixture
def hub_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The hub's database in a temporary state folder: JupyterHub's session on it, and the
    platform's store (the hub process's handles) on the same file."""
    monkeypatch.setenv("JUPYTERHUB_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("JUPYTERHUB_ADMIN", "admin")
    monkeypatch.setenv("JUPYTERHUB_ADMIN_PASSWORD", "the-admins-password")
    caches = (settings_module.get_settings, backends.get_store, accounts.accounts, signin.limits)
    for cache in caches:
        cache.cache_clear()
    db = orm.new_session_factory(get_settings().database_url)()
    yield db
    db.close()
    backends.get_store().close()
    for cache in caches:
        cache.cache_clear()


def authenticator(cls: type, db: Any) -> Any:
    """The class as the hub makes it (with its session), with an account `alice` (pending)."""
    auth = cls(config=hub_config(), _deprecated_db_session=db)
    if cls is NativeAuthenticator:  # (the platform's makes the admin at start-up)
        auth.create_user("admin", "the-admins-password")
    assert auth.create_user("alice", "alices-own-password") is not None
    user_records.hold(backends.get_store(), "olive", {"renamedTo": "oliver"}, datetime.now(UTC) + timedelta(days=9))
    accounts.accounts().set_state(["gone"], REMOVED, "course")
    return auth


def records() -> dict[str, bytes]:
    """NativeAuthenticator's records: {username: password hash}."""
    with backends.get_store().session() as s:
        return {name: bytes(pw) for name, pw in s.execute(select(USERS_INFO.c.username, USERS_INFO.c.password))}


def signup_probe(auth: Any, handler_class: type, form: dict[str, str]) -> Any:
    """The handler for one POST /hub/signup of `form`, past everything but its own code (the
    request, the page are stand-ins); `rendered` is what the page was rendered with."""

    class Probe(handler_class):
        request = SimpleNamespace(
            connection=SimpleNamespace(context=SimpleNamespace(address=("203.0.113.9", 50000))), headers=HTTPHeaders()
        )
        authenticator = auth
        log = SimpleNamespace(warning=lambda *a: None, info=lambda *a: None)
        rendered: dict[str, Any] = {}

        def get_body_argument(self, name: str, default: Any = None, strip: bool = True) -> Any:
            return form.get(name, default)

        async def render_template(self, name: str, **kwargs: Any) -> str:
            self.rendered = kwargs
            return ""

        def finish(self, chunk: Any = None) -> None:
            pass

    return Probe.__new__(Probe)


def post_signup(
    auth: Any, handler_class: type, username: str, password: str = PASSWORD, confirmation: str | None = None
) -> tuple[dict, float]:
    """Run the handler's POST /hub/signup: (what the page was rendered with, seconds)."""
    form = {"username": username, "signup_password": password, "signup_password_confirmation": confirmation or password}
    probe = signup_probe(auth, handler_class, form)
    t0 = time.perf_counter()
    asyncio.run(probe.post())
    return probe.rendered, time.perf_counter() - t0


def page(rendered: dict[str, Any]) -> dict[str, Any]:
    """What a visitor sees, but the per-account 2FA secret (random either way)."""
    return {k: v for k, v in rendered.items() if k != "two_factor_auth_value"}


def answers_as_fresh(auth: Any, handler: type, taken: str) -> None:
    fresh, _ = post_signup(auth, handler, "newcomer")
    made = records()
    assert "newcomer" in made and fresh["alert"] == "alert-info"
    answer, _ = post_signup(auth, handler, taken)
    assert page(answer) == page(fresh)
    assert records() == made  # no account made, the existing one untouched


@pytest.mark.parametrize("taken", ["alice", "admin", "olive", "gone"])
def test_a_taken_held_or_removed_name_gets_the_answer_of_a_fresh_sign_up(hub_db: Any, taken: str) -> None:
    answers_as_fresh(authenticator(PlatformAuthenticator, hub_db), PlatformSignUpHandler, taken)


@pytest.mark.xfail(strict=True, reason="NativeAuthenticator's own handler says 'already in use'")
@pytest.mark.parametrize("taken", ["alice", "admin"])
def test_nativeauthenticators_own_page_tells_a_taken_name(hub_db: Any, taken: str) -> None:
    answers_as_fresh(authenticator(NativeAuthenticator, hub_db), NativeSignUpHandler, taken)


def test_the_taken_answer_costs_a_bcrypt_like_a_fresh_one(hub_db: Any) -> None:
    auth = authenticator(PlatformAuthenticator, hub_db)
    post_signup(auth, PlatformSignUpHandler, "warm-up")
    fresh = min(post_signup(auth, PlatformSignUpHandler, f"newcomer{i}")[1] for i in range(2))
    taken = min(post_signup(auth, PlatformSignUpHandler, "alice")[1] for _ in range(2))
    assert taken >= 0.5 * fresh, (taken, fresh)


def test_a_weak_password_is_refused_the_same_for_a_taken_name(hub_db: Any) -> None:
    auth = authenticator(PlatformAuthenticator, hub_db)
    fresh, _ = post_signup(auth, PlatformSignUpHandler, "newcomer", password="short")
    taken, _ = post_signup(auth, PlatformSignUpHandler, "alice", password="short")
    assert fresh["alert"] == "alert-danger" and page(taken) == page(fresh)
    assert "newcomer" not in records()


def test_a_sign_up_leaves_the_event_loop_free(hub_db: Any) -> None:
    """bcrypt (~0.2 s) and the store's checks run in a worker thread: the loop serves others."""
    auth = authenticator(PlatformAuthenticator, hub_db)
    t0 = time.perf_counter()
    bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt())
    one_bcrypt = time.perf_counter() - t0
    form = {"username": "newcomer", "signup_password": PASSWORD, "signup_password_confirmation": PASSWORD}

    async def longest_pause() -> float:
        gaps, done = [0.0], asyncio.Event()

        async def tick() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.005)
                gaps.append(time.perf_counter() - last)
                last = time.perf_counter()

        ticker = asyncio.create_task(tick())
        await asyncio.to_thread(lambda: None)  # (the worker threads started)
        await signup_probe(auth, PlatformSignUpHandler, form).post()
        done.set()
        await ticker
        return max(gaps)

    longest = asyncio.run(longest_pause())
    assert "newcomer" in records()
    assert longest < 0.5 * one_bcrypt, (longest, one_bcrypt)


def test_a_mismatched_confirmation_is_said_whatever_the_name(hub_db: Any) -> None:
    auth = authenticator(PlatformAuthenticator, hub_db)
    before = records()
    rendered, _ = post_signup(auth, PlatformSignUpHandler, "alice", confirmation="x")
    assert "did not match" in rendered["result_message"]
    assert records() == before
