"""Caps that keep one hub fair, on real hubs (issue 27): sign-in rate limits per client
address, the unapproved-account password oracle closed, GroupPolicy maxActiveServers on
real minimal labs, and the hub's own limits on the Servers page.

1. 30 sign-ups in a minute from one address (each with a different forged X-Forwarded-For)
   get 429s with Retry-After after SIGNUP_RATE_LIMIT's 10; failed logins likewise after
   LOGIN_RATE_LIMIT's 30, while a successful login uses up nothing (own platform, the
   default limits);
2. an account signed up and not approved gets the same answer for its right password as
   for a wrong one; approved, the right password logs in (the session's hub);
3. a `maxActiveServers: 1` group refuses its second member's start with a message naming
   the group, the limit and who holds the slot; the slot frees when that server stops; a
   member of a second, uncapped group is refused all the same (the session's hub);
4. the Servers page shows the hub's limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from tests.harness import PASSWORD, Hub, wait_for
from tests.helpers import apply, resource

DEFAULT_LIMITS = {"SIGNUP_RATE_LIMIT": "10/minute", "LOGIN_RATE_LIMIT": "30/minute"}


@pytest.fixture(scope="module")
def limited(own_platforms) -> Hub:
    return own_platforms.platform("caps", DEFAULT_LIMITS)


def post_form(hub: Hub, path: str, data: dict[str, str], forged: str) -> requests.Response:
    """One form POST as a browser makes it (its page first, for the XSRF cookie), with an
    X-Forwarded-For and X-Real-Ip the client wrote itself. Both requests carry them:
    JupyterHub ties a visitor's XSRF token to its `remote_ip`, which takes X-Real-Ip from
    any client (that is why the rate limit never reads it)."""
    forged_headers = {"X-Forwarded-For": forged, "X-Real-Ip": forged}
    with requests.Session() as s:
        s.get(f"{hub.url}hub/{path}", headers=forged_headers, timeout=30)
        xsrf = s.cookies.get("_xsrf", path="/hub/") or s.cookies.get("_xsrf") or ""
        return s.post(
            f"{hub.url}hub/{path}",
            data={**data, "_xsrf": xsrf},
            headers=forged_headers,
            timeout=60,
            allow_redirects=False,
        )


def test_signup_flood_from_one_address_gets_429_with_retry_after(limited: Hub) -> None:
    answers = []
    for n in range(30):
        data = {"username": f"caps-flood{n:02d}", "signup_password": PASSWORD, "signup_password_confirmation": PASSWORD}
        answers.append(post_form(limited, "signup", data, forged=f"198.51.100.{n}"))
    codes = [r.status_code for r in answers]
    assert codes == [200] * 10 + [429] * 20, codes
    waits = [int(r.headers["Retry-After"]) for r in answers[10:]]
    assert all(1 <= w <= 60 for w in waits), waits
    assert "Too many signup attempts from your address" in answers[-1].text
    assert "caps-flood10" not in {u["name"] for u in limited.api("GET", "users").json()}
    log = limited.log_path.read_text(errors="replace")
    assert "Refused a signup attempt from 127.0.0.1: over the rate limit" in log  # never a forged address


def test_failed_logins_from_one_address_get_429_a_success_counts_nothing(limited: Hub) -> None:
    for _ in range(5):  # the admin logs in: successes are given back
        session, error = limited.login("admin")
        assert session is not None, error
        session.close()
    codes = []
    for n in range(31):
        r = post_form(limited, "login", {"username": f"caps-nobody{n}", "password": "wrong-pass"}, f"203.0.113.{n}")
        codes.append(r.status_code)
    assert codes == [200] * 30 + [429], codes
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert limited.login("admin")[0] is None  # over the limit, the right password waits too


def login_answer(hub: Hub, username: str, password: str) -> tuple[int, str]:
    r = post_form(hub, "login", {"username": username, "password": password}, forged="192.0.2.1")
    match = re.search(r'<p class="login_error">\s*(.*?)\s*</p>', r.text, re.S)
    return r.status_code, match.group(1).strip() if match else r.text[:300]


def test_an_unapproved_accounts_password_cannot_be_told(hub: Hub, admin_session: requests.Session) -> None:
    """NativeAuthenticator 1.3 answers "User X has not been authorized by an administrator
    yet" to the right password, "Invalid username or password." to a wrong one."""
    hub.signup("caps-pending")
    right = login_answer(hub, "caps-pending", PASSWORD)
    wrong = login_answer(hub, "caps-pending", "not-the-password")
    assert right == wrong == (200, "Invalid username or password."), (right, wrong)
    hub.approve(admin_session, "caps-pending")
    session, error = hub.login("caps-pending")
    assert session is not None, error
    session.close()


CAPPED, OTHER = "caps-course", "caps-extra"


@pytest.fixture
def capped_group(hub: Hub) -> Iterator[list[str]]:
    users = ["caps-amy", "caps-ben", "caps-cid"]
    for user in users:
        hub.create_user(user)
    for group, members in ((CAPPED, users), (OTHER, ["caps-ben"])):
        assert hub.api("POST", f"groups/{group}").status_code in (201, 409)
        assert hub.api("POST", f"groups/{group}/users", json={"users": members}).status_code == 200
    apply(hub, "GroupPolicy", "caps-course", {"groups": [CAPPED], "maxActiveServers": 1})
    apply(hub, "GroupPolicy", "caps-extra", {"groups": [OTHER], "resources": {"cpus": 1}})  # no cap
    try:
        yield users
    finally:
        for user in users:
            if hub.api("GET", f"users/{user}").json().get("servers"):
                hub.stop_server(user)
        for name in ("caps-course", "caps-extra"):
            hub.api("DELETE", f"resources/grouppolicy/{name}")
        for group in (CAPPED, OTHER):
            hub.api("DELETE", f"groups/{group}")


def test_a_full_group_refuses_the_next_members_start(hub: Hub, capped_group: list[str]) -> None:
    amy, ben, cid = capped_group
    assert resource(hub, "GroupPolicy", "caps-course") is not None
    hub.start_server(amy)

    r = hub.api("POST", f"users/{ben}/server")
    expected = (
        f"Your group {CAPPED} may run 1 server at once (maxActiveServers: 1 in GroupPolicy caps-course), and 1 is "
        f"running: {amy}. A slot frees when one of them stops their server; an admin may stop one or raise the limit."
    )
    assert r.status_code == 429, (r.status_code, r.text)  # refused within the hub's wait
    assert expected in r.json()["message"]
    assert not hub.api("GET", f"users/{ben}").json()["servers"]
    log = hub.log_path.read_text(errors="replace")
    wait_for(lambda: expected in hub.log_path.read_text(errors="replace"), 10, "the refusal in the hub's log")
    assert f"Unhandled error starting {ben}" not in log  # a refusal, no traceback

    hub.stop_server(amy)  # the slot frees
    hub.start_server(cid)
    assert hub.api("POST", f"users/{ben}/server").status_code == 429  # cid holds it now
    hub.stop_server(cid)
    hub.start_server(ben)


def test_the_servers_page_shows_the_hubs_limits(hub: Hub, admin_session: requests.Session) -> None:
    page = admin_session.get(f"{hub.url}hub/servers", timeout=30).text
    limits = re.sub(r"\s+", " ", re.search(r'<p id="hub-limits">(.*?)</p>', page, re.S).group(1))
    assert "of 60 servers active" in limits and "of 10 starting" in limits, limits
    report = hub.api("GET", "servers").json()
    assert report["limits"] == {"concurrentSpawnLimit": 10, "activeServerLimit": 60}
