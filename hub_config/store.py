"""The hub process's handle on the platform's store (one per process, opened on first use)."""

from __future__ import annotations

from functools import lru_cache

from reconciler.store import Store

from .settings import get_settings


@lru_cache(maxsize=1)
def get_store() -> Store:
    return Store(get_settings().database_url)
