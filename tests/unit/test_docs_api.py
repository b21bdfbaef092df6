"""Every REST call the README and docs/ show (a `curl` example, or a `METHOD /hub/api/...` in
a table or sentence) is a route the hub serves, with that method: the platform's handlers
(hub_config.handlers) or JupyterHub's own, in the order the hub registers them. A call
written with a method its route does not have would answer 405 to whoever copies it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import jupyterhub
import pytest
from jupyterhub import apihandlers
from tornado import web

from hub_config.handlers import HANDLERS

ROOT = Path(__file__).resolve().parents[2]
# Documented as JupyterHub 6's (docs/jupyterhub6.md): checked against 6, not against 5.5
# (`make test-compat`), which does not serve them.
SINCE_JUPYTERHUB_6 = {(m, "/hub/api/users/<u>/servers/<s>") for m in ("GET", "PUT", "PATCH")}
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# As JupyterHub orders them (JupyterHub.init_handlers): its API, then extra_handlers; the
# hub prefix /hub is added to each.
ROUTES = [
    (re.compile("/hub" + pattern + "$"), handler) for pattern, handler, *_ in apihandlers.default_handlers + HANDLERS
]


def concrete(path: str) -> str:
    """A documented path with its placeholders filled: `<name>`, `NAME`, `...`, `$VAR`."""
    path = path.split("?")[0].split("#")[0]
    path = re.sub(r"<[^>/]*>|\$\{?\w+\}?|\.\.\.", "x1", path)
    return re.sub(r"(?<=/)[A-Z][A-Z_]*(?=/|$)", "x1", path)


def curl_calls(text: str) -> list[tuple[str, str]]:
    """(method, /hub/api/... path) of each curl command in the text (continued lines joined)."""
    calls = []
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        if "curl " not in line:
            continue
        command = line[line.index("curl ") :].split(" #")[0].split(" | ")[0].rstrip("`.")
        try:
            words = shlex.split(command)
        except ValueError:
            continue
        method, data = "GET", False
        for i, word in enumerate(words):
            if word in ("-X", "--request") and i + 1 < len(words):
                method = words[i + 1].upper()
            elif word in ("-d", "--data", "--data-raw"):
                data = True
        if data and "-X" not in words and "--request" not in words:
            method = "POST"
        for word in words:
            match = re.search(r"(/hub/api/\S*)", word)
            if match:
                calls.append((method, match.group(1)))
    return calls


def named_calls(text: str) -> list[tuple[str, str]]:
    """`GET /hub/api/...` written in backticks, in tables and sentences."""
    pattern = rf"`({'|'.join(METHODS)}) ((?:\$HUB)?/hub/api/[^` ]*)"
    return [(m.group(1), m.group(2).removeprefix("$HUB")) for m in re.finditer(pattern, text)]


def documented() -> list[tuple[str, str, str]]:
    calls = []
    for doc in DOCS:
        text = doc.read_text()
        for method, path in curl_calls(text) + named_calls(text):
            calls.append((doc.relative_to(ROOT).as_posix(), method, path))
    return calls


def serves(method: str, path: str) -> str | None:
    """None when the hub serves `method path`, else what is wrong."""
    for pattern, handler in ROUTES:
        if pattern.match(concrete(path)):
            implemented = getattr(handler, method.lower(), None)
            if implemented is None or implemented is getattr(web.RequestHandler, method.lower()):
                return f"{handler.__name__} has no {method}: 405"
            return None
    return "no such route: 404"


def test_the_docs_show_calls() -> None:
    calls = documented()
    assert len(calls) > 15
    assert ("README.md", "DELETE", "/hub/api/users/alice/manage-volumes") in calls


@pytest.mark.parametrize(("doc", "method", "path"), documented())
def test_a_documented_call_is_served(doc: str, method: str, path: str) -> None:
    if (method, path) in SINCE_JUPYTERHUB_6 and jupyterhub.version_info[0] < 6:
        pytest.skip(f"JupyterHub {jupyterhub.__version__} does not serve {method} {path} (6 does)")
    problem = serves(method, path)
    assert problem is None, f"{doc}: {method} {path}: {problem}"


def test_the_check_sees_a_missing_method() -> None:
    assert serves("DELETE", "/hub/api/users/alice/volume-resets") is not None  # POST to request, GET to list
    assert serves("DELETE", "/hub/api/users/alice/volume-resets/reset-alice-x1") is None  # cancels one
    assert serves("GET", "/hub/api/nowhere") is not None
