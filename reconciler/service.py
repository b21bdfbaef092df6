"""The reconciler as a JupyterHub-managed service: the loop, the GitOps watcher, /health, /metrics.

The hub starts it (and restarts it if it dies) with its API URL and token in the
environment (`JUPYTERHUB_API_URL`, `JUPYTERHUB_API_TOKEN`, `JUPYTERHUB_SERVICE_URL`).
`hubctl run` starts the same thing in the foreground.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from vocabulary import naming, scopes
from vocabulary.settings import Settings, SettingsError, get_settings

from . import lanes
from .clients.hub import HubClient
from .context import Context, no_source
from .controllers import CONTROLLERS, FINALIZERS, WATCHES, engineaccess, grouppolicy, idlecullpolicy
from .docker_proxy import DockerProxy
from .engines import make_engine
from .lanes import LaneReport
from .loop import Reconciler
from .proxy_port import AuditSink
from .sources.gitops import GitOpsSource
from .store import Store
from .tokens import TokenCheck

log = logging.getLogger("reconciler")
T = TypeVar("T")


async def watch_engine(ctx: Context, stop: asyncio.Event) -> None:
    """Container events: any start wakes the engine-wide access check; a start or stop of one
    of this platform's servers wakes that user's privileged- and Docker-access keys and the
    drift survey; one of a container made through the Docker proxy, its owner's Docker-access key."""
    loop = asyncio.get_running_loop()
    halt = threading.Event()

    def on_event(event: dict) -> None:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        user = attributes.get(naming.LABEL_USER)
        if user and attributes.get(naming.LABEL_PLATFORM) == ctx.settings.platform_id:
            loop.call_soon_threadsafe(ctx.enqueue, (naming.PRIVILEGED_ACCESS_KIND, user))
            loop.call_soon_threadsafe(
                ctx.enqueue, (naming.DOCKER_ACCESS_KIND, user)
            )  # a server stopped: its containers
            loop.call_soon_threadsafe(ctx.enqueue, (naming.SERVER_DRIFT_KIND, naming.SERVER_DRIFT_KEY))
        # A container the Docker proxy made: its owner's key looks (the label only wakes it;
        # what is done is decided from the proxy's records).
        owner = attributes.get(naming.LABEL_DOCKER_OWNER)
        if owner and attributes.get(naming.LABEL_DOCKER_PLATFORM) == ctx.settings.platform_id:
            loop.call_soon_threadsafe(ctx.enqueue, (naming.DOCKER_ACCESS_KIND, owner))
        if event.get("status") == "start":
            loop.call_soon_threadsafe(ctx.enqueue, (engineaccess.KIND, engineaccess.KEY))

    watcher = asyncio.ensure_future(asyncio.to_thread(ctx.engine.watch_events, None, on_event, halt))
    await stop.wait()
    halt.set()
    ctx.engine.stop_events()
    await asyncio.wait([watcher], timeout=5)


TOKEN_CHECKS = Counter("jhds_token_checks_total", "Token checks of /health/details and /metrics", ["verdict"])


class DetailsAccess:
    """Who may read the details: a hub token holding the platform's read scope, asked of the
    hub's API (`GET /user`) through a bounded cache (`tokens.py`)."""

    def __init__(self, hub: HubClient):
        self.hub = hub
        self.check = TokenCheck(self._ask)

    async def _ask(self, token: str) -> bool:
        model = await self.hub.whoami(token)
        return bool(model) and scopes.READ in (model.get("scopes") or [])

    async def allows(self, request: web.Request) -> bool:
        kind, _, token = request.headers.get("Authorization", "").partition(" ")
        if kind.lower() not in ("token", "bearer") or not token:
            return False
        verdict = await self.check.check(token)
        TOKEN_CHECKS.labels(verdict.value).inc()
        return verdict.allowed


def state(reconciler: Reconciler, reports: list[LaneReport]) -> str:
    if not reconciler.ready:
        return "starting"
    return "stuck" if any(r.stuck for r in reports) else "ok"


def refused() -> web.Response:
    """Returned, not raised: a raised HTTPForbidden (its traceback holding the request) grew
    the process by about 400 bytes a request for good (aiohttp 3, CPython 3.11, measured)."""
    return web.Response(status=403, text=f"needs a token with the scope {scopes.READ}")


def make_app(reconciler: Reconciler, check: DetailsAccess, prefix: str = "/") -> web.Application:
    async def health(_request: web.Request) -> web.Response:
        """For anyone (the proxy publishes it): ok or not (starting, or a lane's worker stuck
        past its deadline), nothing more."""
        now = state(reconciler, reconciler.lane_reports())
        return web.json_response({"status": now}, status=200 if now == "ok" else 503)

    async def details(request: web.Request) -> web.Response:
        if not await check.allows(request):
            return refused()
        reports = reconciler.lane_reports()
        body = {
            "status": state(reconciler, reports),
            "pid": os.getpid(),
            "queueDepth": len(reconciler.queue),
            "lastResync": reconciler.last_resync,
            "controllers": sorted([*reconciler.controllers, *reconciler.watches]),
            "lanes": {r.lane: r.as_dict() for r in reports},
        }
        return web.json_response(body)

    async def metrics(request: web.Request) -> web.Response:
        if not await check.allows(request):
            return refused()
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    for base in {"/", prefix if prefix.endswith("/") else prefix + "/"}:
        app.router.add_get(base + "health", health)
        app.router.add_get(base + "health/details", details)
        app.router.add_get(base + "metrics", metrics)
    return app


def lane_plan(s: Settings) -> lanes.LanePlan:
    return lanes.plan(
        s.reconciler_workers,
        s.reconciler_slow_workers,
        s.reconcile_deadline,
        s.reconcile_slow_deadline,
        s.spawn_timeout,
        s.broadcast_deadline,
    )


def thread_pool_size(s: Settings) -> int:
    return 8 + s.reconciler_workers + s.reconciler_slow_workers + 2 * s.backup_concurrency


def seed_spec(s: Settings) -> dict[str, object]:
    """The built-in everyone-policy, from the original platform's idle-culler variables."""
    timeout = s.idle_culler_timeout
    return {
        "idleTimeout": timeout,
        "maxAge": s.idle_culler_max_age,
        "warnBefore": s.idle_culler_warn_before if s.idle_culler_warn_before < timeout else 0,
        "maxExtension": int(s.idle_culler_max_extension * 3600),
        "priority": -1000,
    }


def seed_builtins(store: Store, s: Settings) -> None:
    """The built-in resources, before any controller runs: the idle-culler policy (when
    JUPYTERHUB_IDLE_CULLER_ENABLED), and the docker-privileged GroupPolicy (the socket)."""
    idle = seed_spec(s) if s.idle_culler_enabled else None
    seeded = store.seed(idlecullpolicy.KIND, idlecullpolicy.SEED_NAME, idle)
    if seeded not in ("none", "unchanged"):
        log.info("reconciler: built-in idle-culling policy %s (JUPYTERHUB_IDLE_CULLER_*)", seeded)
    seeded = store.seed(grouppolicy.KIND, grouppolicy.SEED_NAME, grouppolicy.SEED_SPEC)
    if seeded != "unchanged":
        log.info("reconciler: built-in group policy %s %s (the Docker socket)", grouppolicy.SEED_NAME, seeded)


def hub_environment(settings: Settings) -> tuple[str, str, str, str]:
    """(the hub's API URL, the token, this service's URL, its prefix) as the hub gives them."""
    api_url = os.environ.get("JUPYTERHUB_API_URL", f"http://{settings.hub_ip}:{settings.hub_port}/hub/api")
    token = os.environ.get("JUPYTERHUB_API_TOKEN") or (
        settings.automation_token.get_secret_value() if settings.automation_token else ""
    )
    if not token:
        raise SystemExit("reconciler: no JUPYTERHUB_API_TOKEN (run it as a hub service, or set HUB_AUTOMATION_TOKEN)")
    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{settings.reconciler_port}")
    return api_url, token, service_url, os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")


async def serve_health(
    reconciler: Reconciler, hub: HubClient, service_url: str, prefix: str, port: int
) -> web.AppRunner:
    url = urlparse(service_url)
    runner = web.AppRunner(make_app(reconciler, DetailsAccess(hub), prefix), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, url.hostname or "127.0.0.1", url.port or port).start()
    log.info("reconciler: /health and /metrics on %s", service_url)
    return runner


async def serve(stop: asyncio.Event | None = None) -> None:
    settings = get_settings()
    api_url, token, service_url, prefix = hub_environment(settings)

    store = Store(settings.database_url, settings.events_max_per_subject)
    await asyncio.to_thread(seed_builtins, store, settings)
    hub = HubClient(api_url, token)
    gitops = None
    if settings.manifests_dir:
        root = Path(settings.manifests_dir).resolve()
        gitops = GitOpsSource(store, root, prune=settings.gitops_prune, resync=settings.resync_seconds)
    # `limited` Docker access: the proxy's creates, removes and refusals become events on
    # DockerAccess/<user> (rate-bounded, written off the proxy's loop).
    audit = AuditSink(store, settings.docker_audit_events_per_minute)
    docker_proxy = DockerProxy.from_settings(settings, store, on_audit=audit)
    ctx = Context(
        store=store,
        hub=hub,
        settings=settings,
        engine=make_engine(settings, store),
        sync_source=gitops.sync_once if gitops else no_source,
        docker_proxy=docker_proxy,
    )
    reconciler = Reconciler(
        ctx,
        CONTROLLERS,
        watches=WATCHES,
        finalizers=FINALIZERS,
        resync_seconds=settings.resync_seconds,
        lane_plan=lane_plan(settings),
    )
    sources = [lambda stop: watch_engine(ctx, stop)]
    if gitops is not None:
        sources.append(gitops.run)

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    # Blocking calls run in the default thread pool (the store, the engine). Backup helpers
    # hold a thread each while they copy (BACKUP_CONCURRENCY, and a cancelled one until it
    # ends): the pool is sized so that they never leave the fast lane waiting for a thread.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=thread_pool_size(settings)))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    runner = await serve_health(reconciler, hub, service_url, prefix, settings.reconciler_port)

    await asyncio.to_thread(docker_proxy.start)  # its own thread and loop (docs/architecture.md)
    log.info("reconciler: Docker proxy sockets in %s", settings.docker_proxy_root)

    run = asyncio.create_task(reconciler.run(sources))
    await stop.wait()
    log.info("reconciler: stopping (signal)")
    reconciler.stop()
    await run
    await docker_proxy.shutdown()
    audit.close()
    await runner.cleanup()
    await hub.close()
    store.close()


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it is installed (about a fifth less CPU per delivery), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="[%(levelname)1.1s %(asctime)s.%(msecs)03d %(name)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    try:
        run(serve())
    except SettingsError as e:
        print(f"reconciler: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
