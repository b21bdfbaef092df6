"""`DockerProxy`: one Unix socket per user with limited Docker access, served on the proxy's
own thread and event loop (its own lane: a 100 MB log stream or a long build never stalls
the reconciler's loop, and a stalled reconcile never stalls a user's `docker`).

The reconciler's controllers call `open`, `close`, `owned` and `forget` from their loop;
each hops to the proxy's loop and back (`run_coroutine_threadsafe`, `wrap_future`).
`on_audit` is called on the proxy's loop: it must not block (the DockerAccess controller's
sink hands its database writes to a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from vocabulary import naming
from vocabulary.settings import Settings

from ..docker_objects import DockerObjects, OwnedObject
from ..docker_requests import Quota, owner_labels
from ..docker_requests.model import repository
from ..store import Store
from .after import After, AuditEvent
from .engine import EngineClient
from .forward import Forward
from .ledger import Ledger
from .server import Shared, UserServer
from .view import Viewer

log = logging.getLogger("reconciler.docker_proxy")
T = TypeVar("T")
OnAudit = Callable[[str, AuditEvent], Awaitable[None] | None]
SOCKET = "docker.sock"  # in the user's folder (`naming.docker_proxy_dir`; the lab has LAB_DOCKER_DIR)
SPOOL = ".spool"  # build contexts, beside the users' folders (a user folder's name is [a-z0-9-]: never this)
SUN_PATH_MAX = 100  # bytes a Unix socket's path may have (108 with the NUL, less some margin)


class DockerProxy:
    def __init__(
        self,
        root: Path,
        store: Store,
        platform: str,
        engine_socket: str,
        on_audit: OnAudit | None = None,
        *,
        publish_addresses: frozenset[str] | None = None,
        reserved_images: frozenset[str] = frozenset(),
        reserved_names: tuple[str, ...] = (),
        max_connections: int = 32,
        engine_timeout: float = 30.0,
        forward_timeout: float = 300.0,
    ):
        self.root, self.platform, self.on_audit = Path(root), platform, on_audit
        self.objects = DockerObjects(store)
        self.ledger = Ledger(self.objects)
        self.engine = EngineClient(engine_socket, engine_timeout)
        self.shared = Shared(
            engine=self.engine,
            viewer=Viewer(self.engine, self.ledger, platform, reserved_images),
            after_for=self._after_for,
            forward=Forward(self.engine, forward_timeout),
            platform=platform,
            publish_addresses=publish_addresses,
            reserved_names=reserved_names,
            max_connections=max_connections,
            spool_dir=self.root / SPOOL,
        )
        self.users: dict[str, UserServer] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._started = threading.Event()
        self._lock = threading.Lock()
        self._pending: set[asyncio.Future[Any]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, on_audit: OnAudit | None = None) -> DockerProxy:
        """The proxy of this engine host: the platform's names and images kept off limits."""
        template = settings.volume_name_template.split("{", 1)[0]
        names = (f"{settings.container_prefix}-", *([template] if template else []), settings.shared_volume)
        images = {settings.notebook_image, settings.backup_helper_image}
        return cls(
            settings.docker_proxy_root,
            store,
            settings.platform_id,
            settings.docker_socket,
            on_audit,
            publish_addresses=frozenset(settings.docker_proxy_publish_addresses),
            reserved_images=frozenset(repository(i) for i in images if i),
            reserved_names=tuple(dict.fromkeys(n for n in names if n)),
        )

    # --- lifecycle (from any thread) ---------------------------------------------------
    def start(self) -> None:
        """The proxy's thread and loop, the records loaded; idempotent."""
        with self._lock:
            if self.thread is not None:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)  # only the reconciler reaches in; labs get their folder mounted
            (self.root / SPOOL).mkdir(mode=0o700, exist_ok=True)
            self.thread = threading.Thread(target=self._run, name="docker-proxy", daemon=True)
            self.thread.start()
        self._started.wait()
        self._submit(self.ledger.load()).result(timeout=60)

    def _run(self) -> None:
        self.loop = _new_loop()
        asyncio.set_event_loop(self.loop)
        self._started.set()
        self.loop.run_forever()
        self.loop.close()

    async def shutdown(self) -> None:
        """Every socket closed, every connection dropped, the thread ended."""
        if self.loop is None or self.thread is None:
            return
        await self._call(self._close_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 10)
        self.thread = None

    # --- the shared interface ------------------------------------------------------------
    async def open(self, user: str, quota: Quota) -> Path:
        """The user's socket, listening (idempotent: an open one gets the new quota)."""
        return await self._call(self._open(user, quota))

    async def close(self, user: str) -> None:
        await self._call(self._close(user))

    def open_users(self) -> dict[str, Quota]:
        return {user: server.quota for user, server in list(self.users.items())}

    async def owned(self, user: str) -> list[OwnedObject]:
        return await self._call(self._owned(user))

    async def forget(self, user: str, ids: Iterable[str]) -> None:
        await self._call(self.ledger.drop(user, list(ids)))

    # --- on the proxy's loop ---------------------------------------------------------
    async def _owned(self, user: str) -> list[OwnedObject]:
        return self.ledger.of_user(user)

    async def _open(self, user: str, quota: Quota) -> Path:
        folder = naming.docker_proxy_dir(self.root, user)
        path = folder / SOCKET
        server = self.users.get(user)
        if server is not None and server.server is not None and path.exists():
            server.set_quota(quota)
            return path
        if server is not None:
            await server.close()
        server = UserServer(user, quota, self.shared)
        server.set_quota(quota)
        folder.mkdir(mode=0o711, exist_ok=True)
        os.chmod(folder, 0o711)  # the lab's user may reach the socket, not list the folder
        server.server = await asyncio.start_unix_server(server.connection, sock=_listen(folder), limit=65536)
        os.chmod(path, 0o666)  # any user in the lab: the socket is theirs already (it is their lab)
        self.users[user] = server
        return path

    async def _close(self, user: str) -> None:
        server = self.users.pop(user, None)
        if server is not None:
            await server.close()
        with contextlib.suppress(FileNotFoundError):
            (naming.docker_proxy_dir(self.root, user) / SOCKET).unlink()

    async def _close_all(self) -> None:
        for user in list(self.users):
            await self._close(user)

    def _after_for(self, user: str) -> After:
        async def audit(event: AuditEvent) -> None:
            self._audit(user, event)

        return After(self.engine, self.ledger, audit, owner_labels(self.platform, user))

    def _audit(self, user: str, event: AuditEvent) -> None:
        """Called here, on the proxy's loop, never awaited by the request (a callback that
        writes to the database hands the write to a thread of its own)."""
        if self.on_audit is None:
            return
        try:
            result = self.on_audit(user, event)
        except Exception:
            log.exception("docker proxy: the audit of %s failed", user)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    # --- hopping between loops -------------------------------------------------------
    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.thread is None:
            self.start()
        if asyncio.get_running_loop() is self.loop:
            return await coro
        return await asyncio.wrap_future(self._submit(coro))


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (as the reconciler's own loop): a stream copied through
    costs about half the CPU."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _listen(folder: Path) -> socket.socket:
    """A listening socket at folder/docker.sock (a stale one replaced). A path too long for
    a Unix socket's address is bound through the folder's descriptor instead."""
    path = folder / SOCKET
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(os.fsencode(path)) <= SUN_PATH_MAX:
            sock.bind(str(path))
        else:
            fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
            try:
                sock.bind(f"/proc/self/fd/{fd}/{SOCKET}")
            finally:
                os.close(fd)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
