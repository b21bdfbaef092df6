"""Policy refusals on the installed JupyterHub: a `SpawnException` with a reason on 6.x, the
upgrade notes' HTTP 4xx fallback on 5.x; the user reads the message itself on both."""

from __future__ import annotations

import jupyterhub
from tornado.web import HTTPError

from hub_config import refusals
from hub_config.refusals import SpawnRefused

MESSAGE = "The image x is not allowed for you (100% sure). Allowed: y."


def refusal() -> SpawnRefused:
    return SpawnRefused(MESSAGE, reason=refusals.IMAGE_NOT_ALLOWED)


def test_what_the_user_and_the_log_read_is_the_message() -> None:
    e = refusal()
    assert str(e) == MESSAGE
    assert e.jupyterhub_message == MESSAGE  # the spawn page: "Spawn failed: <message>"


def test_the_hub_sees_a_refusal_not_an_error() -> None:
    e = refusal()
    assert isinstance(e, HTTPError) and e.status_code == 400  # no traceback in the hub's log, 5.x and 6.x
    assert e.reason == refusals.IMAGE_NOT_ALLOWED
    assert SpawnRefused("node b is down", reason=refusals.NODE_DOWN, status_code=503).status_code == 503


def test_on_jupyterhub_6_it_is_the_hubs_spawn_exception() -> None:
    major = int(jupyterhub.__version__.split(".")[0])
    assert (major >= 6) == refusals.HUB_HAS_SPAWN_EXCEPTION
    if major >= 6:
        from jupyterhub.spawner import SpawnException
        from jupyterhub.utils import format_exception

        assert isinstance(refusal(), SpawnException)  # metrics: status=failure, reason=image-not-allowed
        assert format_exception(refusal()) == (MESSAGE, None)
