"""What the proxy does with an engine's answer to an allowed request: records what was made
(before the answer goes back, so the engine-wide survey knows a container before it
starts), forgets what was removed, narrows lists to what the records say is the user's,
and tells the audit what was created or removed."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..docker_objects import new
from ..docker_requests import Allow
from .engine import EngineClient
from .ledger import Ledger

AUX_ID = re.compile(
    rb'\{"aux":\{"ID":"(sha256:[0-9a-f]{64})"\}\}'
)  # a build's result (quotes in RUN output are escaped)


@dataclass(frozen=True)
class AuditEvent:
    kind: str  # create | remove | refused
    endpoint: str  # "container create", ...
    object: str  # the id or name it is about ("" when none)
    message: str


Audit = Callable[[AuditEvent], Awaitable[None]]
LISTS: dict[str, tuple[str, str]] = {  # endpoint: (record kind, the key of a listed object's id)
    "container list": ("container", "Id"),
    "volume list": ("volume", "Name"),
    "network list": ("network", "Id"),
    "image list": ("image", "Id"),
}
PRUNES = {"container prune": ("ContainersDeleted", "container"), "volume prune": ("VolumesDeleted", "volume")}
REMOVES = {"container remove", "volume remove", "network remove", "image remove"}


@dataclass
class Outcome:
    user: str
    allow: Allow
    ref: str  # the object the path named, resolved where the proxy resolved it
    request_body: Any
    query: dict[str, list[str]]


class After:
    def __init__(self, engine: EngineClient, ledger: Ledger, audit: Audit, labels: dict[str, str]):
        self.engine, self.ledger, self.audit = engine, ledger, audit
        self.labels = labels  # the owner's: a volume "made" without them already existed

    def narrowed(self, user: str, endpoint: str, body: bytes) -> bytes:
        """A list's answer without what the records do not give the user (labels can be copied)."""
        kind, key = LISTS[endpoint]
        listed = json.loads(body or b"null")
        if endpoint == "volume list" and isinstance(listed, dict):
            listed["Volumes"] = [v for v in listed.get("Volumes") or [] if self.ledger.owner(kind, v[key]) == user]
        elif isinstance(listed, list):
            listed = [o for o in listed if self.ledger.owner(kind, o.get(key, "")) == user]  # type: ignore[arg-type]
        return json.dumps(listed).encode() + b"\n"

    async def answered(self, o: Outcome, status: int, body: bytes) -> None:
        """An answer (2xx) to an allowed request came back: record, forget, audit."""
        endpoint, answer = o.allow.endpoint, _json(body)
        made: str | None = None
        if endpoint == "container create":
            made = answer["Id"]
            host = (o.allow.body or {}).get("HostConfig") or {}
            cpus = (host.get("NanoCpus") or 0) / 1e9
            name = (o.query.get("name") or [""])[-1]
            await self.ledger.add(o.user, [new("container", made, name, memory=host.get("Memory") or 0, cpus=cpus)])
            await self._anonymous_volumes(o.user, made)
        elif endpoint == "volume create":
            if (answer.get("Labels") or {}) != self.labels:
                return  # the engine handed back a volume that existed: not the user's
            made = answer["Name"]
            await self.ledger.add(o.user, [new("volume", made, made)])
        elif endpoint == "network create":
            made = answer["Id"]
            await self.ledger.add(o.user, [new("network", made, (o.request_body or {}).get("Name") or "")])
        elif endpoint == "exec create":
            await self.ledger.add(o.user, [new("exec", answer["Id"], container=o.ref)])
        elif endpoint in REMOVES:
            gone = [o.ref] if endpoint != "image remove" else [d["Deleted"] for d in answer or [] if "Deleted" in d]
            await self.ledger.drop(o.user, gone)
            await self.audit(AuditEvent("remove", endpoint, o.ref, f"{endpoint}: {o.ref}"))
        elif endpoint in PRUNES:
            key, _ = PRUNES[endpoint]
            gone = (answer or {}).get(key) or []
            await self.ledger.drop(o.user, gone)
            if gone:
                await self.audit(AuditEvent("remove", endpoint, ",".join(gone), f"{endpoint}: {len(gone)} removed"))
        if made is not None:
            await self.audit(AuditEvent("create", endpoint, made, f"{endpoint}: {made}"))

    async def _anonymous_volumes(self, user: str, container: str) -> None:
        """The volumes the engine made for the container unlabelled (an image's VOLUME, `-v
        /data`): recorded as the user's. Any other volume it mounts is already the user's
        (the policy refused the rest), so an unrecorded one is new."""
        found = await self.engine.json("GET", f"/containers/{container}/json") or {}
        names = [m["Name"] for m in found.get("Mounts") or [] if m.get("Type") == "volume" and m.get("Name")]
        fresh = [n for n in names if self.ledger.owner("volume", n) is None]
        await self.ledger.add(user, [new("volume", n, n, anonymous=True, container=container) for n in fresh])

    async def built(self, user: str, image_id: str | None) -> None:
        if image_id:
            await self.ledger.add(user, [new("image", image_id)])
            await self.audit(AuditEvent("create", "image build", image_id, f"image build: {image_id}"))


class BuildSniffer:
    """Finds the built image's id in a build's output as it streams by."""

    def __init__(self) -> None:
        self.tail = b""
        self.image_id: str | None = None

    def __call__(self, data: bytes) -> None:
        window = self.tail + data
        for m in AUX_ID.finditer(window):
            self.image_id = m.group(1).decode()
        self.tail = window[-200:]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except json.JSONDecodeError:
        return None
