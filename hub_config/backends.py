"""The hub process's handles on the platform's store, delivery ledger and Docker engine:
one of each per process, opened on first use and shared by every handler."""

from __future__ import annotations

from functools import lru_cache

from reconciler.clients.docker import Engine
from reconciler.deliveries import Deliveries
from reconciler.engines import make_engine
from reconciler.store import Store
from reconciler.usage.ledger import UsageLedger
from vocabulary.settings import get_settings


@lru_cache(maxsize=1)
def get_store() -> Store:
    settings = get_settings()
    return Store(settings.database_url, settings.events_max_per_subject)


@lru_cache(maxsize=1)
def get_ledger() -> Deliveries:
    return Deliveries(get_store())


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The backend's engine (on Swarm: node placements in the store)."""
    return make_engine(get_settings(), get_store())


@lru_cache(maxsize=1)
def get_usage() -> UsageLedger:
    """The usage ledger (its tables made on first use)."""
    return UsageLedger(get_store())
