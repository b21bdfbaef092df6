"""Create requests for volumes, networks and images (build, pull): no host path or host
network through them, the platform's image names left alone, the owner's labels set."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..container_rules import volume_bind_path
from .dockerfile import dockerfile_path
from .model import (
    PLATFORM,
    SHARED,
    Quota,
    Refused,
    Rule,
    View,
    human,
    image_key,
    labelled,
    not_yours,
    owner_of,
    repository,
    rule,
)

VOLUME_DRIVER = rule("Driver", "volume and network drivers other than `local` and `bridge`")
DRIVER_OPTS = rule("DriverOpts", "volume driver options (a host path bound, a network file system): tmpfs only")
VOLUME_TAKEN = rule("Name", "a volume name another owner uses", 409)
NETWORK_OPTIONS = rule("Options", "network options other than MTU and inter-container traffic")
IPAM = rule("IPAM", "chosen subnets or IPAM drivers")
INGRESS = rule("Ingress", "Swarm ingress and config-from networks")
REMOTE = rule("remote", "builds from a URL (the context cannot be measured; the engine fetches it)")
BUILD_CGROUP = rule("cgroupparent", "a build's cgroup parent (outside the quota)")
BUILD_NETWORK = rule("networkmode", "builds on the host's network or another container's")
BUILDKIT = rule("version", "BuildKit builds (`version=2`, /session, /grpc: not filtered by field)")
CONTEXT = rule("build context", "a build context over the quota", 409)
BUILDS = rule("builds", "a third build of the same user while two run (each spools its context to disk)", 429)
BUILD_MEMORY = rule("memory", "a build's memory over the quota", 409)
BUILD_CPUS = rule("cpuquota", "a build's CPUs over the quota", 409)
TAG = rule("t", "tags naming the platform's images")
FROM_SRC = rule("fromSrc", "importing an image from a URL or a tar (`docker import`)")
FROM_IMAGE = rule("fromImage", "pulling the platform's images")
TAG_TAKEN = rule("t", "a tag another user's image holds (a build would take it over)", 409)
PULL_TAKEN = rule("fromImage", "a tag another user's image holds (a pull would take it over)", 409)
NETWORK_KEEPS = {"com.docker.network.driver.mtu", "com.docker.network.bridge.enable_icc"}


def volume(body: Any, user: str, view: View) -> dict[str, Any]:
    body = copy.deepcopy(body) if isinstance(body, dict) else {}
    driver, opts = body.get("Driver") or "local", body.get("DriverOpts") or {}
    if driver != "local":
        raise VOLUME_DRIVER.refuse(f"{driver!r} is not allowed (local only)")
    if (path := volume_bind_path({"Driver": "local", "Options": opts})) is not None:
        raise DRIVER_OPTS.refuse(f"binding the host path {path} is not allowed")
    if opts and (opts.get("type") != "tmpfs" or opts.get("device", "tmpfs") != "tmpfs"):
        raise DRIVER_OPTS.refuse(f"{opts!r} is not allowed (type=tmpfs only)")
    name = body.get("Name") or ""
    if name and owner_of(view.volumes, name) not in (None, user):
        raise VOLUME_TAKEN.refuse(f"the volume {name} exists and is not yours")
    body["Labels"] = labelled(body.get("Labels"), view.platform, user)
    return body


def network(body: Any, user: str, view: View) -> dict[str, Any]:
    body = copy.deepcopy(body) if isinstance(body, dict) else {}
    if (driver := body.get("Driver") or "bridge") != "bridge":
        raise VOLUME_DRIVER.refuse(f"{driver!r} is not allowed (bridge only)")
    if extra := sorted(set(body.get("Options") or {}) - NETWORK_KEEPS):
        raise NETWORK_OPTIONS.refuse(f"{', '.join(extra)} not allowed")
    ipam = body.get("IPAM") or {}
    if (ipam.get("Driver") or "default") != "default" or ipam.get("Config") or ipam.get("Options"):
        raise IPAM.refuse("the engine chooses the subnet")
    if body.get("Ingress") or body.get("ConfigFrom") or body.get("ConfigOnly"):
        raise INGRESS.refuse("not allowed")
    body["Labels"] = labelled(body.get("Labels"), view.platform, user)
    return body


def _tag_free(ref: str, user: str, view: View, which: Rule, taken: Rule) -> None:
    """A user's image never takes a name the platform uses (it would run as a lab), nor a
    tag another user's image holds (`view.images` has the tags the engine found held)."""
    owner = view.images.get(image_key(ref))
    if repository(ref) in view.reserved_images or owner == PLATFORM:
        raise which.refuse(f"{ref} names the platform's image")
    if owner not in (None, SHARED, user):
        raise taken.refuse(f"{ref} belongs to another user's image; choose another tag")


def bases(refs: Sequence[str], user: str, view: View) -> None:
    """A build's base images (`FROM`, `COPY --from`), judged as an image a path names: one
    another user recorded, or the platform's, is absent (404); one that resolved to nothing
    here is the engine's to pull."""
    for ref in refs:
        owners = {owner_of(view.images, image_key(ref)), owner_of(view.images, ref)}
        if repository(ref) in view.reserved_images or owners - {None, SHARED, user}:
            raise not_yours("image", ref)


def build(
    query: Mapping[str, Sequence[str]], body_size: int | None, user: str, quota: Quota, view: View
) -> tuple[dict[str, list[str]], int | None]:
    """(the query to send, the largest context to stream), or `Refused`."""
    q = {k: list(v) for k, v in query.items()}
    one = {k: v[-1] for k, v in q.items() if v}
    if one.get("remote"):
        raise REMOTE.refuse(f"{one['remote']} is not allowed; send the context")
    if one.get("version", "1") != "1":
        raise BUILDKIT.refuse("BuildKit is not available here; DOCKER_BUILDKIT=0 uses the classic builder")
    if one.get("networkmode", "default") not in ("", "default", "bridge", "none"):
        raise BUILD_NETWORK.refuse(f"{one['networkmode']!r} is not allowed")
    if one.get("cgroupparent"):
        raise BUILD_CGROUP.refuse(f"{one['cgroupparent']!r} is not allowed")
    dockerfile_path(one.get("dockerfile", ""))
    for tag in q.get("t", []):
        _tag_free(tag, user, view, TAG, TAG_TAKEN)
    if quota.build_context is not None and body_size is not None and body_size > quota.build_context:
        raise CONTEXT.refuse(f"{human(body_size)} ({body_size}) > at most {human(quota.build_context)}")
    limit = quota.memory
    asked = int(one.get("memory") or 0)
    if limit is not None and asked > limit:
        raise BUILD_MEMORY.refuse(f"{human(asked)} asked, at most {human(limit)}")
    if limit is not None and not asked:
        q["memory"] = [str(quota.default_memory or limit)]
    if limit is not None:
        q["memswap"] = q["memory"]  # no swap beyond the memory limit (-1 would be unlimited)
    _build_cpus(q, one, quota)
    # A step's container is the engine's, not recorded as the user's: removed whatever the
    # build's outcome (the engine keeps a failed step's otherwise), so none lingers unowned.
    q["rm"], q["forcerm"] = ["1"], ["1"]
    try:
        labels = json.loads(one.get("labels") or "{}")
    except json.JSONDecodeError as e:
        raise Refused(400, f"labels: not JSON ({e.msg})", "labels") from e
    q["labels"] = [json.dumps(labelled(labels, view.platform, user), sort_keys=True)]
    return q, quota.build_context


def _build_cpus(q: dict[str, list[str]], one: Mapping[str, str], quota: Quota) -> None:
    """A build's steps run in containers: within the per-container CPUs, as `create` is."""
    if quota.cpus is None:
        return
    period = int(one.get("cpuperiod") or 0) or 100_000
    asked = int(one.get("cpuquota") or 0) / period
    if asked > quota.cpus:
        raise BUILD_CPUS.refuse(f"{asked:g} CPUs asked, at most {quota.cpus:g}")
    if not asked:
        q["cpuperiod"] = [str(period)]
        q["cpuquota"] = [str(int((quota.default_cpus or quota.cpus) * period))]


def pull(query: Mapping[str, Sequence[str]], user: str, view: View) -> dict[str, list[str]]:
    q = {k: list(v) for k, v in query.items()}
    if any(q.get("fromSrc", [])):
        raise FROM_SRC.refuse("not allowed; pull from a registry or build")
    _tag_free(pulled(q), user, view, FROM_IMAGE, PULL_TAKEN)
    return q


def pulled(query: Mapping[str, Sequence[str]]) -> str:
    """The reference a pull writes (`fromImage` with its `tag`)."""
    image = (query.get("fromImage") or [""])[-1]
    tag = (query.get("tag") or [""])[-1]
    return image if not tag or "@" in image else f"{image}{'@' if tag.startswith('sha256:') else ':'}{tag}"
