"""What the settings' sections share: the names they check, the defaults of the users'
volumes, the GPU mode, the error a bad value raises, and `Section`, the base every section
is a model of (only the documented names, the aliases, are read)."""

from __future__ import annotations

import json
import re
import zlib
from enum import IntEnum
from typing import Annotated

from pydantic import AfterValidator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .. import naming

DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
VOLUME_KEY = re.compile(naming.VOLUME_KEY_PATTERN)

DEFAULT_USER_VOLUMES = {
    "home": "/home",
    "workspace": "/home/lab/workspace",
    "cache": "/home/lab/.cache",
}

DEFAULT_VOLUME_DESCRIPTIONS = {
    "home": "Home directory: settings and conda environments",
    "workspace": "Workspace: notebooks and project files",
    "cache": "Cache: downloaded packages and other caches",
}


class GpuMode(IntEnum):
    OFF = 0
    ON = 1
    AUTO = 2


class SettingsError(Exception):
    """A setting has a bad value; the message is meant for the person starting the hub."""


def parse_mapping(value: object) -> object:
    """Accept `key=value,key=value` as well as JSON for map-valued variables."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return json.loads(text)
    pairs = {}
    for item in text.split(","):
        key, sep, val = item.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {item!r}")
        pairs[key.strip()] = val.strip()
    return pairs


def parse_list(value: object) -> object:
    """Accept `a,b,c` (blanks dropped) for list-valued variables; a list is kept as it is."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def low_entropy(secret: str) -> bool:
    """A secret that is long but guessable: few distinct characters, or a repeated pattern
    (it compresses well). `openssl rand -hex 32` has 16 distinct characters and does not."""
    if len(set(secret)) < 10:
        return True
    return len(zlib.compress(secret.encode(), 9)) < 0.6 * len(secret)


def docker_name(value: str) -> str:
    """`value` if Docker takes it in a name; else a ValueError saying what it takes."""
    if not DOCKER_NAME.match(value):
        raise ValueError("must be usable in Docker names: [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    return value


DockerName = Annotated[str, AfterValidator(docker_name)]


class Section(BaseSettings):
    """One section of the settings (a mixin of `Settings`)."""

    # Only the documented names (the aliases) are read: a stray `HUB_PORT` or `ADMIN` in the
    # environment must not become a setting.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False, frozen=True)
