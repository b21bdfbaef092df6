"""The JupyterHub REST API, as the reconciler uses it (aiohttp; errors mapped to our kinds)."""

from __future__ import annotations

import json as jsonlib
from typing import Any
from urllib.parse import quote

import aiohttp

from ..errors import PermanentError, TemporaryError

PAGINATION = "application/jupyterhub-pagination+json"
PAGE_LIMIT = 5000  # the hub allows this much per page (api_page_max_limit in the config)


class NotFound(Exception):
    pass


class AlreadyExists(PermanentError):
    """409: someone else created it first (get-or-create treats this as done)."""


class HubClient:
    """One session for the process; every call counted (benchmarks read `requests`)."""

    def __init__(self, api_url: str, token: str, timeout: float = 10):
        self.api_url = api_url.rstrip("/") + "/"
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"token {self._token}"}, timeout=self._timeout
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        self.requests += 1
        url = self.api_url + path
        wait = aiohttp.ClientTimeout(total=timeout) if timeout else None
        try:
            async with self._http().request(method, url, json=json, headers=headers, timeout=wait) as r:
                if r.status == 404:
                    raise NotFound(path)
                text = await r.text()
                body = jsonlib.loads(text) if text.strip() else None
                if r.status >= 500:
                    raise TemporaryError(f"hub answered {r.status} to {method} {path}")
                if r.status == 409:
                    raise AlreadyExists(f"{method} {path}: already exists", reason="AlreadyExists")
                if r.status >= 400:
                    message = body.get("message") if isinstance(body, dict) else body
                    raise PermanentError(f"hub refused {method} {path}: {r.status} {message}", reason="HubRefused")
                return body
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            raise TemporaryError(f"hub unreachable: {type(e).__name__}: {e}") from e

    async def paginated(self, path: str) -> list[dict[str, Any]]:
        """Every item of a paginated list, page by page (JupyterHub's pagination protocol)."""
        items: list[dict[str, Any]] = []
        offset = 0
        sep = "&" if "?" in path else "?"
        while True:
            url = f"{path}{sep}offset={offset}&limit={PAGE_LIMIT}"
            page = await self.request("GET", url, headers={"Accept": PAGINATION})
            items.extend(page["items"])
            nxt = (page.get("_pagination") or {}).get("next")
            if not nxt:
                return items
            offset = nxt["offset"]

    # --- groups and users ---
    async def list_groups(self) -> dict[str, dict[str, Any]]:
        return {g["name"]: g for g in await self.paginated("groups")}

    async def list_usernames(self) -> set[str]:
        # ?include_stopped_servers is not needed: names only, so the model stays small.
        return {u["name"] for u in await self.paginated("users")}

    async def get_group(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", f"groups/{quote(name, safe='')}")
        except NotFound:
            return None

    async def whoami(self, token: str) -> dict[str, Any] | None:
        """The owner of `token` and the token's scopes (`GET /user` with that token), or None
        if the hub does not accept it."""
        try:
            return await self.request("GET", "user", headers={"Authorization": f"token {token}"})
        except (NotFound, PermanentError):
            return None

    async def list_users(self) -> dict[str, dict[str, Any]]:
        """Every user's model (servers, groups), by name: one request per page."""
        return {u["name"]: u for u in await self.paginated("users")}

    async def create_users(self, names: list[str]) -> list[dict[str, Any]]:
        """Create these users in one request (JupyterHub skips the ones that exist; 409 when
        all do, which is done too)."""
        try:
            # JupyterHub creates them one by one (~10 ms each): the page's time, not the default.
            body = {"usernames": names}
            return await self.request("POST", "users", json=body, timeout=10 + 0.1 * len(names)) or []
        except AlreadyExists:
            return []

    async def delete_user(self, name: str) -> bool:
        """Delete a user (their tokens and login cookies go with them); False if already gone."""
        try:
            await self.request("DELETE", f"users/{quote(name, safe='')}")
            return True
        except NotFound:
            return False

    async def user_exists(self, name: str) -> bool:
        try:
            await self.request("GET", f"users/{quote(name, safe='')}")
            return True
        except NotFound:
            return False

    async def create_group(self, name: str) -> dict[str, Any]:
        """Get or create: a group created meanwhile by someone else is fine."""
        try:
            return await self.request("POST", f"groups/{quote(name, safe='')}")
        except AlreadyExists:
            return await self.get_group(name) or {"name": name, "users": []}

    async def add_group_members(self, group: str, users: list[str]) -> dict[str, Any]:
        return await self.request("POST", f"groups/{quote(group, safe='')}/users", json={"users": users})

    async def remove_group_members(self, group: str, users: list[str]) -> dict[str, Any]:
        return await self.request("DELETE", f"groups/{quote(group, safe='')}/users", json={"users": users})

    # --- users and servers ---
    @staticmethod
    def _server_path(user: str, server: str) -> str:
        base = f"users/{quote(user, safe='')}"
        return f"{base}/servers/{quote(server, safe='')}" if server else f"{base}/server"

    async def get_user(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", f"users/{quote(name, safe='')}")
        except NotFound:
            return None

    async def post_activity(self, user: str, servers: list[str], when: str) -> None:
        """Record activity (an ISO time) for the user and these servers of theirs."""
        body = {"last_activity": when, "servers": {name: {"last_activity": when} for name in servers}}
        await self.request("POST", f"users/{quote(user, safe='')}/activity", json=body)

    async def stop_server(self, user: str, server: str = "") -> None:
        await self.request("DELETE", self._server_path(user, server))

    async def start_server(self, user: str, server: str = "") -> None:
        await self.request("POST", self._server_path(user, server))

    async def rename_user(self, old: str, new: str) -> dict[str, Any]:
        """JupyterHub's own rename (`PATCH /users/<old>` with a new `name`): the user keeps
        their id, so their groups, roles and tokens follow (needs admin:users)."""
        return await self.request("PATCH", f"users/{quote(old, safe='')}", json={"name": new})
