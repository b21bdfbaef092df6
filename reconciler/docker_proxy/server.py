"""One user's socket: every connection on it is that user's (the socket says who, never the
request), every request on it judged by the policy (`docker_requests.decide`) before the
engine sees the request the policy rewrote."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..docker_requests import (
    Allow,
    Quota,
    Refuse,
    Request,
    build_bases,
    decide,
    dockerfile_path,
    judge_bases,
    owner_labels,
    trigger_bases,
)
from ..docker_requests.objects import BUILDS
from ..docker_requests.routes import COMPILED, VERSION
from . import http1
from .after import LISTS, After, AuditEvent, BuildSniffer, Outcome
from .context import read_dockerfile, spool
from .engine import EngineClient
from .forward import (
    HIJACKS,
    RAW_TYPES,
    STREAMS,
    BodyTooLarge,
    Forward,
    pipe_both_ways,
    relayed_head,
    until_client_leaves,
)
from .splice import splice
from .view import Viewer

log = logging.getLogger("reconciler.docker_proxy")
MAX_JSON = 4 * 1024 * 1024  # a create request is a few KiB
IDLE = 300.0  # seconds a kept-alive connection may wait for its next request
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
STREAMED_BODIES = {("POST", "image build"), ("PUT", "container archive")}
# Builds one user runs at once: each may spool up to the quota's `buildContext` to disk, so
# the connection limit alone would let one user hold 32 contexts there.
BUILDS_AT_ONCE = 2


@dataclass
class Shared:
    """What every user's server shares (one per proxy)."""

    engine: EngineClient
    viewer: Viewer
    after_for: Callable[[str], After]  # the user's After (its audit goes to that user)
    forward: Forward
    platform: str
    publish_addresses: frozenset[str] | None
    reserved_names: tuple[str, ...]  # prefixes of names the platform gives (labs, users' volumes)
    max_connections: int
    spool_dir: Path | None = None  # where build contexts are spooled (None: the system's temporary folder)
    volume_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # a name checked, then made: by one at a time


class UserServer:
    def __init__(self, user: str, quota: Quota, shared: Shared):
        self.user, self.quota, self.shared = user, quota, shared
        self.connections: set[asyncio.Task[Any]] = set()
        self.create_lock = asyncio.Lock()  # the quota counted, then a container made: one at a time
        self.builds = 0  # builds of this user between their first byte spooled and the engine's answer
        self.server: asyncio.AbstractServer | None = None
        self.after = shared.after_for(user)

    def set_quota(self, quota: Quota) -> None:
        if self.shared.publish_addresses is not None:
            quota = replace(quota, publish_addresses=self.shared.publish_addresses)
        self.quota = quota

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        for task in list(self.connections):
            with contextlib.suppress(BaseException):
                await task

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            if len(self.connections) >= self.shared.max_connections:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await http1.read_head(reader, request=True)
                    message = f"at most {self.shared.max_connections} connections at once; close some"
                    writer.write(_error(429, message, close=True))
                    await writer.drain()
                return
            self.connections.add(task)
            while True:
                async with asyncio.timeout(IDLE):
                    head = await http1.read_head(reader, request=True)
                if head is None or not await self.exchange(head, reader, writer):
                    break
        except http1.BadMessage as e:
            with contextlib.suppress(Exception):
                writer.write(_error(e.status, str(e), close=True))
                await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("docker proxy: a request of %s failed", self.user)
            with contextlib.suppress(Exception):
                writer.write(_error(500, "the Docker proxy failed on this request", close=True))
        finally:
            self.connections.discard(task)
            writer.close()

    async def exchange(self, head: http1.Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its answer; whether the connection stays open for another."""
        method = head.first[0].upper()
        split = urlsplit(head.first[1])
        path, query = unquote(split.path), parse_qs(split.query, keep_blank_values=True)
        endpoint, ref = match(method, path)
        streamed = (method, endpoint) in STREAMED_BODIES
        if head.get("content-type").split(";")[0].strip().lower() in FORMS:
            return await self.refuse(
                reader, writer, Refuse(endpoint, 400, "Content-Type: form bodies are not accepted; send JSON"), True
            )
        body, size = None, head.body_length()
        if head.get("expect").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not streamed:
            try:
                raw = await http1.read_body(reader, head, MAX_JSON)
            except http1.TooLarge:
                return await self.refuse(reader, writer, Refuse(endpoint, 413, f"a body over {MAX_JSON} bytes"), True)
            if raw.strip():
                try:
                    body = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    return await self.refuse(
                        reader, writer, Refuse(endpoint, 400, f"the body is not JSON ({e})"), False
                    )
        if ref in (".", "..") or (named := self._reserved(endpoint, query, body)):
            return await self.refuse(
                reader, writer, _reserved_refusal(endpoint, ref, named if ref not in (".", "..") else ""), streamed
            )
        lock = self.create_lock if endpoint == "container create" else contextlib.nullcontext()
        if endpoint == "volume create" or (endpoint == "container create" and body):
            lock = _both(lock, self.shared.volume_lock)
        async with lock:
            seen = await self.shared.viewer.for_request(self.user, endpoint, ref, body, query)
            decision = decide(Request(method, path, query, body, size), self.user, self.quota, seen.view)
            if isinstance(decision, Refuse):  # named as the route table names it, for the audit
                return await self.refuse(reader, writer, replace(decision, endpoint=endpoint), streamed)
            resolved = seen.container_id or seen.network_id or ref
            path = _rewrite(path, ref, resolved) if resolved != ref else path
            if not await self._make_volumes(decision.create_volumes):
                taken = Refuse(endpoint, 409, "HostConfig.Binds: a volume of that name was made by someone else")
                return await self.refuse(reader, writer, taken, streamed)
            outcome = Outcome(self.user, decision, resolved, body, query)
            if endpoint == "image build":
                return await self._build(head, path, decision, reader, writer, outcome)
            return await self.send(head, method, path, decision, reader, writer, outcome)

    async def _build(
        self,
        head: http1.Head,
        path: str,
        allow: Allow,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        outcome: Outcome,
    ) -> bool:
        """A build: its context spooled, its Dockerfile's base images judged, then the
        context streamed to the engine from the spooled file."""
        if self.builds >= BUILDS_AT_ONCE:
            refused = BUILDS.refuse(f"{self.builds} of at most {BUILDS_AT_ONCE} at once run")
            refusal = Refuse(allow.endpoint, refused.status, refused.message, refused.field)
            return await self.refuse(reader, writer, refusal, True)
        self.builds += 1
        try:
            try:
                spooled = await spool(reader, head, allow.max_body, self.shared.spool_dir)
            except http1.TooLarge as e:
                refusal = Refuse(allow.endpoint, 409, f"build context: over the quota of {e.limit} bytes")
                return await self.refuse(reader, writer, refusal, True)
            with spooled:
                if (refusal := await self._bases(spooled, allow)) is not None:
                    return await self.refuse(reader, writer, refusal, False)
                return await self.send(head, "POST", path, allow, reader, writer, outcome, spooled)
        finally:
            self.builds -= 1

    async def _bases(self, spooled: IO[bytes], allow: Allow) -> Refuse | None:
        """A base image another user recorded, or the platform's, is absent (404)."""
        name = dockerfile_path((allow.query.get("dockerfile") or [""])[-1])
        text = await asyncio.to_thread(read_dockerfile, spooled, name)
        if isinstance(text, Refuse):
            return text
        refs = build_bases(text, allow.query)
        if isinstance(refs, Refuse):
            return refs
        view, triggers = await self.shared.viewer.bases(refs)
        if (refusal := judge_bases(refs, self.user, view)) is not None or not triggers:
            return refusal
        more = trigger_bases(triggers)  # a base's `COPY --from` triggers: images read in this build
        if isinstance(more, Refuse):
            return more
        return judge_bases(more, self.user, (await self.shared.viewer.bases(more))[0])

    async def send(
        self,
        head: http1.Head,
        method: str,
        path: str,
        allow: Allow,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        outcome: Outcome,
        spooled: IO[bytes] | None = None,
    ) -> bool:
        endpoint = allow.endpoint
        streamed = (method, endpoint) in STREAMED_BODIES
        hijack = endpoint in HIJACKS and head.get("upgrade").lower() == "tcp"
        f = self.shared.forward
        try:
            async with contextlib.AsyncExitStack() as stack:
                if endpoint not in STREAMS:
                    await stack.enter_async_context(asyncio.timeout(f.timeout))
                source = spooled if spooled is not None else reader if streamed else None
                er, ew, answer = await f.send(
                    head, method, path, allow.query, allow.body, source, allow.max_body, hijack
                )
        except BodyTooLarge as e:
            return await self.refuse(
                reader, writer, Refuse(endpoint, 409, f"build context: over the quota of {e} bytes"), True
            )
        try:
            raw = answer.get("content-type").split(";")[0] in RAW_TYPES
            if endpoint in HIJACKS and (answer.status == 101 or (raw and answer.status == 200)):
                writer.write(relayed_head(answer, close=False))
                await writer.drain()
                await pipe_both_ways((reader, writer), (er, ew))
                return False
            if endpoint in STREAMS and 200 <= answer.status < 300 and method != "HEAD":
                return await self._stream(answer, outcome, reader, writer, (er, ew))
            data = await f.whole(er, answer, method)
        finally:
            ew.close()
        if 200 <= answer.status < 300:
            if endpoint in LISTS:
                data = self.after.narrowed(self.user, endpoint, data)
            await self.after.answered(outcome, answer.status, data)
        if method == "HEAD":
            writer.write(relayed_head(answer, close=False))
        else:
            writer.write(http1.response(answer.status, data, answer.headers))
        await writer.drain()
        return not streamed or answer.status < 300

    async def _stream(
        self,
        answer: http1.Head,
        outcome: Outcome,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        engine: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> bool:
        writer.write(relayed_head(answer, close=True))
        if outcome.allow.endpoint == "image build" and answer.chunked():
            sniffer = BuildSniffer()
            await until_client_leaves(reader, http1.copy_chunked(engine[0], writer, sniffer))
            await self.after.built(self.user, sniffer.image_id)
        else:
            await until_client_leaves(reader, splice(engine, writer))
        return False

    async def _make_volumes(self, names: tuple[str, ...]) -> bool:
        """The named volumes a create would make unlabelled, made first with the owner's
        labels; False if one turned out to exist already (the engine hands it back)."""
        for name in names:
            labels = owner_labels(self.shared.platform, self.user)
            answer = await self.shared.engine.call("POST", "/volumes/create", body={"Name": name, "Labels": labels})
            made = json.loads(answer.body or b"{}") if answer.status < 300 else {}
            if answer.status >= 300 or (made.get("Labels") or {}) != labels:
                return False
            await self.after.answered(Outcome(self.user, _volume_allow(), name, {"Name": name}, {}), 201, answer.body)
        return True

    def _reserved(self, endpoint: str, query: dict[str, list[str]], body: Any) -> str:
        """A container or volume name the platform gives (a lab's, a user's home volume)."""
        names = []
        if endpoint == "container create":
            names = query.get("name") or []
            host = (body or {}).get("HostConfig") or {} if isinstance(body, dict) else {}
            names += [b.split(":", 1)[0] for b in host.get("Binds") or [] if isinstance(b, str) and ":" in b]
            names += [m.get("Source") or "" for m in host.get("Mounts") or [] if isinstance(m, dict)]
        elif endpoint == "volume create" and isinstance(body, dict):
            names = [body.get("Name") or ""]
        prefixes = self.shared.reserved_names
        return next((n for n in names if isinstance(n, str) and n and n.lstrip("/").startswith(prefixes)), "")

    async def refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refusal: Refuse, close: bool
    ) -> bool:
        """The engine's error shape, so the CLI prints the message; `close`: a body is left
        unread (read and dropped after the answer, then the connection closed)."""
        await self.after.audit(AuditEvent("refused", refusal.endpoint, refusal.field or "", refusal.message))
        writer.write(_error(refusal.status, refusal.message, close=close))
        await writer.drain()
        if close:
            await _drain(reader)
        return not close


async def _drain(reader: asyncio.StreamReader, seconds: float = 60, most: int = 2**31) -> None:
    """The rest of a refused body read and dropped, so the client gets to read the answer
    (a client still writing to a closed connection sees a broken pipe, not the 409)."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(seconds):
            seen = 0
            while seen < most and (data := await reader.read(http1.BLOCK)):
                seen += len(data)


def match(method: str, path: str) -> tuple[str, str]:
    """(endpoint, the object the path names) as the policy's route table has them."""
    bare = VERSION.sub("", path).rstrip("/") or "/"
    for m, pattern, endpoint, _ in COMPILED:
        if method == m and (found := pattern.match(bare)):
            return endpoint, found.group(1) if found.groups() else ""
    return f"{method} {bare}", ""


def _rewrite(path: str, ref: str, resolved: str) -> str:
    """The path with the name it gave replaced by the id it resolved to."""
    head, sep, tail = path.partition(f"/{ref}")
    return f"{head}/{resolved}{tail}" if sep else path


def _error(status: int, message: str, close: bool) -> bytes:
    body = json.dumps({"message": message}).encode() + b"\n"
    return http1.response(status, body, [("Content-Type", "application/json")], close=close)


def _reserved_refusal(endpoint: str, ref: str, name: str) -> Refuse:
    if not name:
        return Refuse(endpoint, 404, f"No such object: {ref}")
    return Refuse(endpoint, 403, f"Name: {name} is a name the platform gives; choose another", "Name")


def _volume_allow() -> Allow:
    return Allow("volume create", {}, None)


@contextlib.asynccontextmanager
async def _both(first: Any, second: asyncio.Lock) -> Any:
    async with first, second:
        yield
