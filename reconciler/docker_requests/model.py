"""The Docker request policy's inputs and outputs (plain data), its rules (each refusal is
one, so `docs/docker-access.md` is checked against them) and who owns what a request names."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vocabulary import naming

PLATFORM = "\0platform"  # the owner of what the platform made (labs, helpers, its images); no user's name
SHARED = ""  # an image pulled from a registry: anyone may run it, nobody removes it through the policy
HEX_ID = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
SHORT_ID = re.compile(r"^(sha256:)?[0-9a-f]{4,64}$")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with or without the version prefix (/v1.43/containers/json)
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)  # as urllib's parse_qs gives it
    body: Any = None  # the parsed JSON body; None when none (or a build's tar context)
    body_size: int | None = None  # bytes, when known (Content-Length): a build's context


@dataclass(frozen=True)
class Quota:
    """What one user may use, from their GroupPolicies (None: no bound)."""

    max_containers: int | None = None  # containers that exist at once (running or stopped)
    memory: int | None = None  # bytes, per container
    cpus: float | None = None  # per container
    total_memory: int | None = None  # bytes, over all the user's containers
    total_cpus: float | None = None
    default_memory: int | None = None  # given to a container that asks for none (else `memory`)
    default_cpus: float | None = None  # (else `cpus`)
    build_context: int | None = None  # bytes
    pids: int | None = 1024  # processes per container (a fork bomb stays in its container)
    publish_addresses: frozenset[str] = frozenset({"127.0.0.1"})  # host IPs a port may be published on


@dataclass(frozen=True)
class Usage:
    """What the user's containers hold now (those that exist; limits as the engine recorded them)."""

    containers: int = 0
    memory: int = 0  # bytes
    cpus: float = 0.0


@dataclass(frozen=True)
class View:
    """The engine's objects a request may name, each by id and by name, with its owner: a
    user (the owner label the policy set), `PLATFORM` (anything else; for images, what the
    platform's image settings name) or, for images, `SHARED` (pulled from a registry)."""

    platform: str
    containers: Mapping[str, str] = field(default_factory=dict)
    volumes: Mapping[str, str] = field(default_factory=dict)
    networks: Mapping[str, str] = field(default_factory=dict)
    images: Mapping[str, str] = field(default_factory=dict)  # ids and references (`image_key`)
    execs: Mapping[str, str] = field(default_factory=dict)  # exec id -> owner (recorded: no labels)
    usage: Usage = Usage()
    reserved_images: frozenset[str] = frozenset()  # repositories of the platform's images (`image_key` form)


@dataclass(frozen=True)
class Allow:
    endpoint: str
    query: dict[str, list[str]]  # rewritten: what goes to the engine
    body: Any  # rewritten (None: forward the request's body as it came, e.g. a build's tar)
    create_volumes: tuple[str, ...] = ()  # named volumes the engine would make unlabelled: make them first
    audit: bool = False  # a create or a remove: an event on the user's DockerAccess resource
    remember: str | None = None  # "exec": the answer's Id is the user's (execs carry no labels)
    max_body: int | None = None  # bytes: cut a streamed body (a build's context) beyond this


@dataclass(frozen=True)
class Refuse:
    endpoint: str
    status: int  # 403 no way out, 404 not yours (as if absent), 409 over quota or taken, 400 malformed
    message: str
    field: str | None = None


Decision = Allow | Refuse


class Refused(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@dataclass(frozen=True)
class Rule:
    field: str  # as a request names it: HostConfig.Privileged, a query parameter, ...
    refuses: str  # what a reader of docs/docker-access.md sees
    status: int = 403

    def refuse(self, detail: str) -> Refused:
        return Refused(self.status, f"{self.field}: {detail}", self.field)


RULES: list[Rule] = []


def rule(field: str, refuses: str, status: int = 403) -> Rule:
    made = Rule(field, refuses, status)
    RULES.append(made)
    return made


def not_yours(kind: str, ref: str) -> Refused:
    """The engine's own answer for an absent object, so a client behaves as if it were."""
    return Refused(404, f"No such {kind}: {ref}")


def image_key(ref: str) -> str:
    """One spelling of an image reference: `postgres` = `docker.io/library/postgres:latest`."""
    if HEX_ID.match(ref) or "@" in ref:
        return ref
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    return ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"


def repository(ref: str) -> str:
    key = image_key(ref)
    return key.split("@", 1)[0] if "@" in key else key.rsplit(":", 1)[0]


def owner_of(objects: Mapping[str, str], ref: str) -> str | None:
    """Who owns the object `ref` names (an id, a unique id prefix, or a name); None: nothing
    by that name, or a prefix of several owners' ids."""
    ref = ref.removeprefix("/")
    if ref in objects:
        return objects[ref]
    if SHORT_ID.match(ref):
        short = ref.removeprefix("sha256:")
        ids = (key for key in objects if HEX_ID.match(key))
        owners = {objects[key] for key in ids if key.removeprefix("sha256:").startswith(short)}
        return owners.pop() if len(owners) == 1 else None
    return None


def owner_labels(platform: str, user: str) -> dict[str, str]:
    return {naming.LABEL_DOCKER_PLATFORM: platform, naming.LABEL_DOCKER_OWNER: user}


def labelled(labels: Mapping[str, str] | None, platform: str, user: str) -> dict[str, str]:
    """The request's labels without any of the platform's, with the owner's set over them."""
    mine = {k: v for k, v in (labels or {}).items() if not k.startswith(naming.LABEL_PREFIX)}
    return {**mine, **owner_labels(platform, user)}


MALFORMED = rule("filters", "list filters that are not JSON", 400)


def own_filters(query: Mapping[str, Sequence[str]], platform: str, user: str) -> dict[str, list[str]]:
    """The query with its `filters` narrowed to the user's objects (label filters AND)."""
    out = {k: list(v) for k, v in query.items()}
    try:
        filters = json.loads(out.get("filters", ["{}"])[-1] or "{}")
    except json.JSONDecodeError as e:
        raise MALFORMED.refuse(f"not JSON ({e.msg})") from e
    if not isinstance(filters, dict):
        raise MALFORMED.refuse("not a JSON object")
    labels = filters.get("label") or []
    labels = [k for k, on in labels.items() if on] if isinstance(labels, dict) else list(labels)
    filters["label"] = labels + [f"{k}={v}" for k, v in owner_labels(platform, user).items()]
    out["filters"] = [json.dumps(filters, sort_keys=True)]
    return out


def human(n: float) -> str:
    """Bytes as a reader takes them in (the exact number follows in the messages)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.4g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.4g} GiB"
