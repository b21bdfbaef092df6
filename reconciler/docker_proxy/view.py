"""The `View` one request needs, from the engine and the proxy's records.

Owners come from the records only: an object the proxy recorded is its user's, anything
else is the platform's (404 to every user), and an image nobody recorded is shared.
Labels never grant: anyone who can reach the engine can copy them. What the request names
is resolved by the engine itself (an inspection), so the object judged is the object the
engine will act on: `library/x`, a short id, a digest all resolve as the engine resolves
them, and a reference that resolves to nothing recorded as the user's answers 404.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from ..docker_requests import PLATFORM, SHARED, Usage, View, image_key
from ..docker_requests.objects import pulled
from .engine import EngineClient, EngineError
from .ledger import Ledger

DEFAULT_NETWORKS = frozenset({"bridge", "host", "none", "default"})


@dataclass
class Seen:
    """The view, and the ids the path's reference resolved to (the path is rewritten to
    them, so a name re-used between the check and the call cannot switch the object)."""

    view: View
    container_id: str | None = None
    network_id: str | None = None


class Viewer:
    def __init__(self, engine: EngineClient, ledger: Ledger, platform: str, reserved: frozenset[str]):
        self.engine, self.ledger = engine, ledger
        self.base = View(platform=platform, reserved_images=reserved)

    def _owner(self, kind: Any, oid: str) -> str:
        return self.ledger.owner(kind, oid) or PLATFORM

    def _image_owner(self, oid: str) -> str:
        return self.ledger.owner("image", oid) or SHARED

    async def for_request(
        self, user: str, endpoint: str, ref: str, body: Any, query: dict[str, list[str]] | None = None
    ) -> Seen:
        body = body if isinstance(body, dict) else {}
        query = query or {}
        if endpoint == "image build":
            return Seen(replace(self.base, images=await self._tags(query.get("t") or [])))
        if endpoint == "image pull":
            return Seen(replace(self.base, images=await self._tags([pulled(query)])))
        if endpoint == "container create":
            return Seen(await self.full(user, body.get("Image") or ""))
        if (endpoint.startswith("container ") and ref) or endpoint == "exec create":
            return await self._container(ref)
        if endpoint.startswith("exec "):
            return Seen(replace(self.base, execs={ref: self.ledger.owner("exec", ref) or PLATFORM}))
        if endpoint in ("volume inspect", "volume remove"):
            return Seen(replace(self.base, volumes={ref: self._owner("volume", ref)}))
        if endpoint == "volume create" and (name := body.get("Name")):
            known = await self.engine.json("GET", f"/volumes/{name}")
            return Seen(replace(self.base, volumes={name: self._owner("volume", name)} if known else {}))
        if endpoint.startswith("network ") and ref:
            return await self._network(ref, body.get("Container") or "")
        if endpoint in ("image inspect", "image remove"):
            return Seen(replace(self.base, images=await self._image(ref)))
        return Seen(self.base)

    async def _container(self, ref: str) -> Seen:
        found = await self.engine.json("GET", f"/containers/{ref}/json")
        if not found:
            return Seen(self.base)  # the policy answers 404, as the engine would
        owner = self._owner("container", found["Id"])
        containers = {ref: owner, found["Id"]: owner, found.get("Name", "").lstrip("/"): owner}
        return Seen(replace(self.base, containers=containers), container_id=found["Id"])

    async def _network(self, ref: str, container: str) -> Seen:
        found = await self.engine.json("GET", f"/networks/{ref}")
        networks = {}
        if found and found.get("Name") not in DEFAULT_NETWORKS:
            owner = self._owner("network", found["Id"])
            networks = {ref: owner, found["Id"]: owner, found["Name"]: owner}
        seen = Seen(replace(self.base, networks=networks), network_id=found["Id"] if networks else None)
        if container:
            target = await self._container(container)
            seen.view = replace(seen.view, containers=target.view.containers)
        return seen

    async def _image(self, ref: str) -> dict[str, str]:
        found = await self.engine.json("GET", f"/images/{ref}/json")
        if not found:
            return {}
        owner = self._image_owner(found["Id"])
        return {ref: owner, image_key(ref): owner, found["Id"]: owner}

    async def _tags(self, tags: list[str]) -> dict[str, str]:
        """The owner of the image each tag names now (a tag nothing holds is left out)."""
        held: dict[str, str] = {}
        for tag in tags:
            found = await self._inspect(tag)
            if found and image_key(tag) in {image_key(t) for t in found.get("RepoTags") or []}:
                held[image_key(tag)] = self._image_owner(found["Id"])
        return held

    async def bases(self, refs: list[str]) -> tuple[View, list[str]]:
        """A build's base images, each resolved by the engine as a path's reference is, and
        their `ONBUILD` triggers (they run in this build)."""
        images: dict[str, str] = {}
        triggers: list[str] = []
        for ref in refs:
            found = await self._inspect(ref)
            if found:
                owner = self._image_owner(found["Id"])
                images.update({ref: owner, image_key(ref): owner, found["Id"]: owner})
                triggers += (found.get("Config") or {}).get("OnBuild") or []
        return replace(self.base, images=images), triggers

    async def _inspect(self, ref: str) -> Any:
        """The engine's inspection of an image; None when it resolves to nothing (a reference
        it cannot parse included: the engine's to refuse); an engine failing answers 500."""
        answer = await self.engine.call("GET", f"/images/{ref}/json")
        if 300 <= answer.status < 500:
            return None
        if answer.status >= 500:
            raise EngineError(f"GET /images/{ref}/json: {answer.status} {answer.body[:200]!r}")
        return answer.json()

    async def full(self, user: str, image: str) -> View:
        """Every container, volume and network with its owner, the image the request names,
        and the user's usage (their recorded containers that still exist: limits as recorded)."""
        containers, volumes, networks, images = await asyncio.gather(
            self.engine.json("GET", "/containers/json", {"all": ["1"]}),
            self.engine.json("GET", "/volumes"),
            self.engine.json("GET", "/networks"),
            self._image(image) if image else _none(),
        )
        owners: dict[str, str] = {}
        for c in containers or []:
            owner = self._owner("container", c["Id"])
            owners[c["Id"]] = owner
            for name in c.get("Names") or []:
                owners[name.lstrip("/")] = owner
        vols = {v["Name"]: self._owner("volume", v["Name"]) for v in (volumes or {}).get("Volumes") or []}
        nets: dict[str, str] = {}
        for n in networks or []:
            owner = PLATFORM if n["Name"] in DEFAULT_NETWORKS else self._owner("network", n["Id"])
            nets[n["Id"]] = nets[n["Name"]] = owner
        present = {c["Id"] for c in containers or []}
        mine = [o for o in self.ledger.of_user(user, "container") if o.id in present]
        usage = Usage(
            containers=len(mine),
            memory=sum(int(o.body.get("memory") or 0) for o in mine),
            cpus=sum(float(o.body.get("cpus") or 0) for o in mine),
        )
        await self._tidy(user, present, set(vols))
        return replace(self.base, containers=owners, volumes=vols, networks=nets, images=images or {}, usage=usage)

    async def _tidy(self, user: str, containers: set[str], volumes: set[str]) -> None:
        """Records of the user's containers and volumes the engine no longer has (a `--rm`,
        a container removed with its anonymous volumes), and of execs of those containers."""
        gone = self.ledger.stale(user, "container", containers) + self.ledger.stale(user, "volume", volumes)
        gone += [o.id for o in self.ledger.of_user(user, "exec") if o.body.get("container") not in containers]
        await self.ledger.drop(user, gone)


async def _none() -> None:
    return None
