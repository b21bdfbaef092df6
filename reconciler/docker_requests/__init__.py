"""The Docker request policy (issue 25, docs/docker-access.md): what one Docker Engine API
request of a user with `limited` access may do. Pure: the request, the user, their quota
and a view of the engine's objects with their owners in; `Allow` (with the body and query
to send instead) or `Refuse` (a status and a message naming the field) out.

- **ownership**: what the user creates gets the owner's labels, over any the request
  carried; lists and events are narrowed to them; naming anything else answers 404;
- **no way out**: the shared field rules (`container_rules`, also the engine-wide watch's)
  and those only `limited` needs answer 403;
- **quotas**: count, memory and CPUs (defaults applied), a build's context answer 409.

The proxy that calls it (`reconciler/docker_proxy`) builds the view from the engine and
its records, and sends the engine what an `Allow` says instead of the client's bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import objects
from .dockerfile import base_images, build_args, dockerfile_path
from .model import (
    PLATFORM,
    RULES,
    SHARED,
    Allow,
    Decision,
    Quota,
    Refuse,
    Refused,
    Request,
    Rule,
    Usage,
    View,
    image_key,
    owner_labels,
)
from .routes import ROUTES, route
from .shape import MALFORMED_VALUE, check_shape


def decide(request: Request, user: str, quota: Quota, view: View) -> Decision:
    try:
        check_shape(request.query, request.body)
        return route(request, user, quota, view)
    except Refused as refused:
        return Refuse(_endpoint(request), refused.status, refused.message, refused.field)
    except (TypeError, ValueError, AttributeError) as e:
        # A rule read a field as the API types it and the request had something else: the
        # engine would refuse it too (400), and nothing half-checked goes on.
        return Refuse(_endpoint(request), 400, f"value: a malformed field ({e})", MALFORMED_VALUE.field)


def build_bases(dockerfile: str, query: Mapping[str, Sequence[str]]) -> list[str] | Refuse:
    """The images a build's Dockerfile (its text) reads from, or why it cannot be read."""
    try:
        return base_images(dockerfile, build_args((query.get("buildargs") or [""])[-1]))
    except Refused as refused:
        return Refuse("image build", refused.status, refused.message, refused.field)


def trigger_bases(triggers: Sequence[str]) -> list[str] | Refuse:
    """The images a base image's `ONBUILD` triggers read (`COPY --from`), run in this build."""
    text = "FROM scratch\n" + "".join(f"ONBUILD {t}\n" for t in triggers)
    return build_bases(text, {})


def judge_bases(refs: Sequence[str], user: str, view: View) -> Refuse | None:
    """A build's base images, resolved in `view.images`: None when the user may read them."""
    try:
        objects.bases(refs, user, view)
    except Refused as refused:
        return Refuse("image build", refused.status, refused.message, refused.field)
    return None


def markdown() -> str:
    """The endpoints and the refusals as docs/docker-access.md shows them (a unit test keeps
    the page equal to this)."""
    lines = ["| Endpoint | Method and path |", "|---|---|"]
    lines += [f"| {endpoint} | `{method} {path}` |" for method, path, endpoint, _ in ROUTES]
    lines += ["", "| Field | Refused | Status |", "|---|---|---|"]
    lines += [f"| `{r.field}` | {r.refuses} | {r.status} |" for r in RULES]
    return "\n".join(lines) + "\n"


def _endpoint(request: Request) -> str:
    return f"{request.method.upper()} {request.path.split('?', 1)[0]}"


__all__ = [
    "PLATFORM",
    "ROUTES",
    "RULES",
    "SHARED",
    "Allow",
    "Decision",
    "Quota",
    "Refuse",
    "Request",
    "Rule",
    "Usage",
    "View",
    "build_bases",
    "decide",
    "dockerfile_path",
    "image_key",
    "judge_bases",
    "markdown",
    "owner_labels",
    "trigger_bases",
]
