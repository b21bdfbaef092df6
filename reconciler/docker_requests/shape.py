"""What a request must look like before its fields are read: the engine's Go decoders match
JSON field names without regard to case and take a query parameter's first value, while the
rules read exact names and one value. A body key that is a case variant of a field the rules
know (`privileged`, `hostConfig`, `labels`), or a single-valued parameter given twice, would
slip past them: refused (400) before any rule runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .model import RULES, Refused, rule

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
MALFORMED_VALUE = rule("value", "a value of the wrong type (a string for a number, a list for a map, ...)", 400)
# The types of the fields the rules read, as the API has them (None: absent, always fine).
LIST, MAP, NUMBER, TEXT, FLAG = list, dict, (int, float), str, bool
HOST_TYPES: dict[str, Any] = {
    **dict.fromkeys(("Binds", "Mounts", "CapAdd", "Devices", "DeviceCgroupRules", "SecurityOpt"), LIST),
    **dict.fromkeys(("VolumesFrom", "Links", "DeviceRequests", "MaskedPaths", "ReadonlyPaths"), LIST),
    **dict.fromkeys(("PortBindings", "Sysctls", "LogConfig", "Annotations"), MAP),
    **dict.fromkeys(("Memory", "MemorySwap", "NanoCpus", "CpuQuota", "CpuPeriod", "PidsLimit", "OomScoreAdj"), NUMBER),
    **dict.fromkeys(("PidMode", "IpcMode", "UTSMode", "NetworkMode", "UsernsMode", "CgroupnsMode"), TEXT),
    **dict.fromkeys(("CgroupParent", "Runtime", "VolumeDriver"), TEXT),
    **dict.fromkeys(("Privileged", "PublishAllPorts"), FLAG),
}
BODY_TYPES: dict[str, Any] = {"HostConfig": MAP, "Labels": MAP, "Image": TEXT, "NetworkingConfig": MAP}


def check_shape(query: Mapping[str, Sequence[str]], body: Any) -> None:
    for name, values in query.items():
        if name not in MULTI_VALUED and len(values) > 1:
            raise Refused(400, f"query parameter {name} given {len(values)} times: give it once", name)
    _check_keys(body)
    if isinstance(body, dict):
        _check_types(body, BODY_TYPES, "")
        if isinstance(body.get("HostConfig"), dict):
            _check_types(body["HostConfig"], HOST_TYPES, "HostConfig.")


def _check_types(fields: dict[str, Any], types: dict[str, Any], prefix: str) -> None:
    for name, kind in types.items():
        value = fields.get(name)
        wrong = value is not None and (not isinstance(value, kind) or (kind is NUMBER and isinstance(value, bool)))
        if wrong:
            expected = {LIST: "a list", MAP: "an object", NUMBER: "a number", TEXT: "a string", FLAG: "true or false"}
            raise MALFORMED_VALUE.refuse(f"{prefix}{name} must be {expected[kind]}, not {type(value).__name__}")


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
