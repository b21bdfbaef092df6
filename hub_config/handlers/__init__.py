"""Pages and REST handlers the hub serves for the platform (registered in jupyterhub_config)."""

from __future__ import annotations

from .resources import handlers as resource_handlers

HANDLERS = [*resource_handlers]
