"""Pages and REST handlers the hub serves for the platform (registered in jupyterhub_config)."""

from __future__ import annotations

from .accounts import handlers as account_handlers
from .backups import handlers as backup_handlers
from .idleculling import handlers as idleculling_handlers
from .notifications import handlers as notification_handlers
from .placements import handlers as placement_handlers
from .privileged import handlers as privileged_handlers
from .quota import handlers as quota_handlers
from .renames import handlers as rename_handlers
from .resources import handlers as resource_handlers
from .selfservice import handlers as selfservice_handlers
from .servers import handlers as server_handlers
from .usage import handlers as usage_handlers
from .usage_page import handlers as usage_page_handlers

HANDLERS = [
    *resource_handlers,
    *selfservice_handlers,
    *backup_handlers,
    *notification_handlers,
    *privileged_handlers,
    *idleculling_handlers,
    *server_handlers,
    *placement_handlers,
    *quota_handlers,
    *usage_handlers,
    *usage_page_handlers,
    *rename_handlers,
    *account_handlers,
]
