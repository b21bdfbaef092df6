"""Which endpoint a request is, and what each allows: the route table, read top to bottom
(the first match decides; anything unmatched is refused)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import containers, objects
from .model import SHARED, Allow, Quota, Refused, Request, View, image_key, not_yours, own_filters, owner_of, rule

VERSION = re.compile(r"^/v\d+(\.\d+)?(?=/)")
UNKNOWN = rule("endpoint", "any endpoint not in the table (swarm, plugins, secrets, system prune, commit, ...)")
START_CONFIG = rule("HostConfig at start", "a HostConfig sent to start (removed from the API in 1.24)")
EXEC_PRIVILEGED = rule("Privileged", "privileged exec (`docker exec --privileged`)")
SHARED_IMAGE = rule("image", "removing a shared image (pulled from a registry: others may use it)")


@dataclass(frozen=True)
class Call:
    endpoint: str
    request: Request
    ref: str  # the object the path names ("" when none)
    user: str
    quota: Quota
    view: View

    def allow(self, body: Any = None, **kw: Any) -> Allow:
        query = kw.pop("query", {k: list(v) for k, v in self.request.query.items()})
        return Allow(self.endpoint, query, body if body is not None else self.request.body, **kw)

    def listing(self) -> Allow:
        return self.allow(query=own_filters(self.request.query, self.view.platform, self.user))

    def prune(self) -> Allow:
        return self.allow(query=own_filters(self.request.query, self.view.platform, self.user), audit=True)


Handler = Callable[[Call], Allow]


def _mine(kind: str, objects_of: Callable[[View], Any]) -> Callable[[Call], None]:
    def check(call: Call) -> None:
        if owner_of(objects_of(call.view), call.ref) != call.user:
            raise not_yours(kind, call.ref)

    return check


own_container = _mine("container", lambda v: v.containers)
own_volume = _mine("volume", lambda v: v.volumes)
own_network = _mine("network", lambda v: v.networks)
own_exec = _mine("exec instance", lambda v: v.execs)


def _image_seen(call: Call) -> None:
    if owner_of(call.view.images, image_key(call.ref)) not in (call.user, SHARED) and owner_of(
        call.view.images, call.ref
    ) not in (call.user, SHARED):
        raise not_yours("image", call.ref)


def _image_mine(call: Call) -> None:
    _image_seen(call)
    if call.user not in (owner_of(call.view.images, image_key(call.ref)), owner_of(call.view.images, call.ref)):
        raise SHARED_IMAGE.refuse(f"{call.ref} is shared; only its builder's images are removed here")


def _then(check: Callable[[Call], None], audit: bool = False) -> Handler:
    def handle(call: Call) -> Allow:
        check(call)
        return call.allow(audit=audit)

    return handle


def _create_container(call: Call) -> Allow:
    body, new = containers.create(call.request.body, call.user, call.quota, call.view)
    return call.allow(body, create_volumes=tuple(new), audit=True)


def _start(call: Call) -> Allow:
    own_container(call)
    if call.request.body:
        raise START_CONFIG.refuse("not allowed; give it to create")
    return call.allow()


def _exec_create(call: Call) -> Allow:
    own_container(call)
    if (call.request.body or {}).get("Privileged"):
        raise EXEC_PRIVILEGED.refuse("a privileged exec is not allowed")
    return call.allow(remember="exec")


def _connect(call: Call) -> Allow:
    own_network(call)
    target = (call.request.body or {}).get("Container") or ""
    if owner_of(call.view.containers, target) != call.user:
        raise not_yours("container", target)
    return call.allow()


def _build(call: Call) -> Allow:
    query, most = objects.build(call.request.query, call.request.body_size, call.user, call.quota, call.view)
    return call.allow(query=query, max_body=most, audit=True)


def _pull(call: Call) -> Allow:
    return call.allow(query=objects.pull(call.request.query, call.user, call.view))


def _volume(call: Call) -> Allow:
    return call.allow(objects.volume(call.request.body, call.user, call.view), audit=True)


def _network(call: Call) -> Allow:
    return call.allow(objects.network(call.request.body, call.user, call.view), audit=True)


def _plain(call: Call) -> Allow:
    return call.allow()


def _no_plugin(call: Call) -> Allow:
    raise not_yours("plugin", call.ref)  # `docker inspect NAME` tries plugins last: as if none


def _buildkit(call: Call) -> Allow:
    raise objects.BUILDKIT.refuse("BuildKit is not available here; DOCKER_BUILDKIT=0 uses the classic builder")


C, V, N, E, I = "{container}", "{volume}", "{network}", "{exec}", "{image}"  # noqa: E741
# (method, path, endpoint, handler): what `docker` sends for each command.
ROUTES: tuple[tuple[str, str, str, Handler], ...] = (
    ("GET", "/_ping", "ping", _plain),
    ("HEAD", "/_ping", "ping", _plain),
    ("GET", "/version", "version", _plain),
    ("GET", "/info", "info", _plain),
    ("GET", "/events", "events", Call.listing),
    ("POST", "/containers/create", "container create", _create_container),
    ("GET", "/containers/json", "container list", Call.listing),
    ("POST", "/containers/prune", "container prune", Call.prune),
    ("GET", f"/containers/{C}/json", "container inspect", _then(own_container)),
    ("POST", f"/containers/{C}/start", "container start", _start),
    *(
        (method, f"/containers/{C}/{action}", f"container {action}", _then(own_container))
        for method, action in (
            ("POST", "stop"),
            ("POST", "restart"),
            ("POST", "kill"),
            ("POST", "wait"),
            ("POST", "resize"),
            ("POST", "attach"),
            ("GET", "logs"),
            ("GET", "top"),
            ("GET", "stats"),
            ("POST", "pause"),
            ("POST", "unpause"),
            ("GET", "archive"),
            ("HEAD", "archive"),
            ("PUT", "archive"),
        )
    ),
    ("DELETE", f"/containers/{C}", "container remove", _then(own_container, audit=True)),
    ("POST", f"/containers/{C}/exec", "exec create", _exec_create),
    ("POST", f"/exec/{E}/start", "exec start", _then(own_exec)),
    ("POST", f"/exec/{E}/resize", "exec resize", _then(own_exec)),
    ("GET", f"/exec/{E}/json", "exec inspect", _then(own_exec)),
    ("POST", "/volumes/create", "volume create", _volume),
    ("GET", "/volumes", "volume list", Call.listing),
    ("POST", "/volumes/prune", "volume prune", Call.prune),
    ("GET", f"/volumes/{V}", "volume inspect", _then(own_volume)),
    ("DELETE", f"/volumes/{V}", "volume remove", _then(own_volume, audit=True)),
    ("POST", "/networks/create", "network create", _network),
    ("GET", "/networks", "network list", Call.listing),
    ("GET", f"/networks/{N}", "network inspect", _then(own_network)),
    ("DELETE", f"/networks/{N}", "network remove", _then(own_network, audit=True)),
    ("POST", f"/networks/{N}/connect", "network connect", _connect),
    ("POST", f"/networks/{N}/disconnect", "network disconnect", _connect),
    ("POST", "/build", "image build", _build),
    ("POST", "/session", "buildkit session", _buildkit),
    ("POST", "/grpc", "buildkit grpc", _buildkit),
    ("POST", "/images/create", "image pull", _pull),
    ("GET", "/images/json", "image list", Call.listing),
    ("GET", f"/images/{I}/json", "image inspect", _then(_image_seen)),
    ("DELETE", f"/images/{I}", "image remove", _then(_image_mine, audit=True)),
    ("GET", "/plugins/{plugin}/json", "plugin inspect", _no_plugin),
)


def _pattern(path: str) -> re.Pattern[str]:
    # An image's name may hold slashes (library/postgres:16); the others may not.
    return re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: "(.+)" if m[1] == "image" else "([^/]+)", path) + "$")


COMPILED = tuple((method, _pattern(path), endpoint, handler) for method, path, endpoint, handler in ROUTES)


def route(request: Request, user: str, quota: Quota, view: View) -> Allow:
    path = VERSION.sub("", request.path.split("?", 1)[0]).rstrip("/") or "/"
    for method, pattern, endpoint, handler in COMPILED:
        if request.method.upper() == method and (m := pattern.match(path)):
            return handler(Call(endpoint, request, m.group(1) if m.groups() else "", user, quota, view))
    raise UNKNOWN.refuse(f"{request.method.upper()} {path} is not available with limited Docker access")


__all__ = ["ROUTES", "Refused", "route"]
