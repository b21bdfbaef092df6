"""What a request must look like before its fields are read: the engine's Go decoders match
JSON field names without regard to case and take a query parameter's first value, while the
rules read exact names and one value. A body key that is a case variant of a field the rules
know (`privileged`, `hostConfig`, `labels`), or a single-valued parameter given twice, would
slip past them: refused (400) before any rule runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .model import RULES, Refused

# Fields of the create bodies the rules read, with those they rewrite (Labels) and the
# containers of fields (HostConfig): a case variant of any is refused.
KNOWN_FIELDS = {part for r in RULES for part in r.field.split(".") if part[:1].isupper()} | {
    "HostConfig",
    "Labels",
    "Image",
    "Mounts",
    "Type",
    "Source",
    "VolumeOptions",
    "DriverConfig",
    "Privileged",
}
_BY_CASE = {name.lower(): name for name in KNOWN_FIELDS}
# Objects whose keys are the user's data (label keys, network names, paths, options), not fields.
USER_KEYED = {"Labels", "EndpointsConfig", "DriverOpts", "Options", "ExposedPorts", "PortBindings", "Volumes"}
USER_KEYED |= {"Config", "Sysctls", "StorageOpt", "Tmpfs", "Annotations"}
MULTI_VALUED = {"t"}  # a build's tags


def check_shape(query: Mapping[str, Sequence[str]], body: Any) -> None:
    for name, values in query.items():
        if name not in MULTI_VALUED and len(values) > 1:
            raise Refused(400, f"query parameter {name} given {len(values)} times: give it once", name)
    _check_keys(body)


def _check_keys(value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _check_keys(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            known = _BY_CASE.get(str(key).lower())
            if known is not None and key != known:
                raise Refused(400, f"field {key!r}: the API's name is {known!r} (names are exact here)", known)
            if key not in USER_KEYED:
                _check_keys(item)
