"""The usage and quota endpoints' 400 and 403 answers (`hub_config.usage_requests`, which
the handlers call): who reads a user's figures (JupyterHub's own scope expansion decides
what a token holds), a report's window and grouping, an operator's grant."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
from jupyterhub import orm
from jupyterhub.scopes import expand_scopes, has_scope
from tornado.web import HTTPError

from hub_config import usage_requests as requests
from hub_config.handlers.quota import QuotaGrantsHandler
from vocabulary.scopes import READ, WRITE_REQUESTS

ANN = orm.User(name="ann")


def token(*raw: str) -> Callable[[str], bool]:
    """What a token of ann's with these scopes holds, as JupyterHub expands them (the
    platform's own scopes, declared by the running hub only, as they are)."""
    custom = {r for r in raw if r.startswith("custom:")}
    expanded = expand_scopes([r for r in raw if r not in custom], owner=ANN) | custom
    return lambda scope: has_scope(scope, expanded)


def status(call: Callable[[], object]) -> int:
    with pytest.raises(HTTPError) as e:
        call()
    return e.value.status_code


@pytest.mark.parametrize(
    "raw",
    [
        ("self",),  # ann herself, signed in (the home page)
        ("read:users!user=ann",),
        ("admin:users",),
        ("users",),
        (READ,),  # operators
    ],
)
def test_who_reads_anns_figures(raw: tuple[str, ...]) -> None:
    requests.require_reader("ann", True, token(*raw))


@pytest.mark.filterwarnings("ignore:Not expanding !server filter")  # no server here: it holds less
@pytest.mark.parametrize(
    "raw",
    [
        ("users:activity!user", "access:servers!server"),  # her lab's own server token
        ("servers!user=ann",),  # may start her servers, may not read her
        ("read:users:name!user=ann",),
        ("read:users!user=bob",),
        (),
    ],
)
def test_a_token_without_a_read_of_ann_is_refused(raw: tuple[str, ...]) -> None:
    assert status(lambda: requests.require_reader("ann", True, token(*raw))) == 403


def test_ann_does_not_read_bob_and_nobody_unsigned_reads_anyone() -> None:
    assert status(lambda: requests.require_reader("bob", True, token("self"))) == 403
    assert status(lambda: requests.require_reader("ann", False, token("admin:users"))) == 403


@pytest.mark.parametrize(
    ("since", "until", "says"),
    [
        ("9999-12-31", None, "must be before until"),
        (None, "9999-12-31", "until"),
        ("0001-01-01", None, "at most 731 days"),
        ("yesterday", None, "since must be a duration"),
        ("1d", "tomorrow", "until must be a date"),
    ],
)
def test_a_bad_window_is_a_400_saying_what_is_wrong(since: str | None, until: str | None, says: str) -> None:
    with pytest.raises(HTTPError) as e:
        requests.window(since, until)
    assert e.value.status_code == 400 and says in e.value.log_message % e.value.args


def test_a_report_is_by_user_or_by_group() -> None:
    assert requests.grouping("group") == "group"
    assert status(lambda: requests.grouping("volume")) == 400


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"hours": "20"},
        {"hours": True},
        {"hours": float("nan")},
        {"hours": 0},
        {"hours": -1},
        {"hours": 10_001},
        {"hours": 2, "kind": "disk"},
    ],
)
def test_a_bad_grant_is_a_400(body: dict) -> None:
    assert status(lambda: requests.grant_request(body)) == 400


def test_a_grant_reads_hours_and_kind() -> None:
    assert requests.grant_request({"hours": 20}) == (20.0, "server")
    assert requests.grant_request({"hours": 1.5, "kind": "gpu"}) == (1.5, "gpu")


def test_only_a_holder_of_the_requests_scope_grants() -> None:
    handler = QuotaGrantsHandler.__new__(QuotaGrantsHandler)  # no tornado application: the check alone runs
    handler._jupyterhub_user = SimpleNamespace(name="ann", kind="user")
    handler.expanded_scopes = expand_scopes(["self"], owner=ANN)
    assert status(lambda: handler.require(WRITE_REQUESTS)) == 403
    handler.expanded_scopes = {WRITE_REQUESTS, READ}
    handler.require(WRITE_REQUESTS)
