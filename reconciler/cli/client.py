"""hubctl's exit codes, its one error type, and the hub's REST API as the verbs call it."""

from __future__ import annotations

import os
from typing import Any

import requests

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_NOT_MET = EXIT_INVALID  # wait, reconcile: not within the timeout (like kubectl wait)


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class Api:
    def __init__(self, url: str | None, token: str | None):
        url = url or os.environ.get("JUPYTERHUB_URL") or "http://127.0.0.1:8000"
        self.base = url.rstrip("/") + "/hub/api/"
        self.token = token or os.environ.get("JUPYTERHUB_API_TOKEN") or ""
        if not self.token:
            raise CliError("no API token: set JUPYTERHUB_API_TOKEN or pass --token")

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        try:
            r = requests.request(method, self.base + path, headers={"Authorization": f"token {self.token}"}, **kwargs)
        except requests.RequestException as e:
            raise CliError(f"cannot reach the hub at {self.base}: {e}") from None
        if r.status_code in ok:
            return r
        try:
            body = r.json()
        except ValueError:
            body = {"message": r.text[:300]}
        message = body.get("message") or r.reason
        if r.status_code in (401, 403):
            raise CliError(f"the hub refused the token: {message}")
        if r.status_code in (409, 422):
            lines = [message] + [_issue(e) for e in body.get("errors", [])]
            raise CliError("\n".join(lines), EXIT_INVALID)
        raise CliError(
            f"{method} {path}: {r.status_code} {message}", EXIT_INVALID if r.status_code < 500 else EXIT_USAGE
        )

    def fetch(self, kind: str, name: str, timeout: float = 60) -> dict[str, Any] | None:
        """A resource as served, or None if there is none."""
        r = self.call("GET", f"resources/{kind}/{name}", ok=(200, 404), timeout=timeout)
        return r.json() if r.status_code == 200 else None


def _issue(e: dict[str, Any]) -> str:
    where = f"{e['source']}:{e['line']}: " if e.get("source") and e.get("line") else ""
    path = f"{e['path']}: " if e.get("path") else ""
    return f"  {where}{path}{e['message']}"
