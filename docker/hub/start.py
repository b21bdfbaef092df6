#!/usr/bin/env python3
"""Entry point of the hub container: check before JupyterHub starts, then become it.

1. The settings: a bad value stops here with one line naming the variable.
2. The platform's tables (`jhds_*`): opening the store migrates an older schema forward, in
   place, and refuses a schema newer than this image knows (the database was last used by a
   newer version: run that one, or restore the backup taken before the upgrade).
3. JupyterHub's tables (`hub_config.hubdb`): an older schema in SQLite is copied aside and
   upgraded; PostgreSQL, or a schema newer than this image's JupyterHub, stops with what to
   do (`jupyterhub upgrade-db` itself is run as it is, through this entry point).
Exit codes: 2 bad settings, 3 store schema refused, 4 JupyterHub's schema needs the operator.
Any other command is run as it is.
"""

from __future__ import annotations

import os
import sys

CONFIG = "/srv/jupyterhub/jupyterhub_config.py"


def check() -> int:
    from reconciler.store import Store
    from reconciler.tables import SCHEMA_VERSION
    from vocabulary.settings import SettingsError, get_settings

    try:
        settings = get_settings()
    except SettingsError as e:
        print(f"jhds-hub-start: {e}", file=sys.stderr)
        return 2
    try:
        Store(settings.database_url).close()
    except RuntimeError as e:  # a newer schema than this image's
        print(f"jhds-hub-start: not starting: {e}", file=sys.stderr)
        return 3
    print(f"jhds-hub-start: store schema {SCHEMA_VERSION} ok", file=sys.stderr)
    from hub_config import hubdb

    code, message = hubdb.ensure(settings.database_url, CONFIG)
    print(f"jhds-hub-start: {message}" if code == 0 else f"jhds-hub-start: not starting: {message}", file=sys.stderr)
    return code


def main(argv: list[str]) -> int:
    if not argv:
        argv = ["jupyterhub", "-f", CONFIG]
    starts_hub = os.path.basename(argv[0]) == "jupyterhub" and "upgrade-db" not in argv[1:]
    if starts_hub and (code := check()) != 0:
        return code
    os.execvp(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
