#!/usr/bin/env python3
"""Entry point of the hub container: check before JupyterHub starts, then become it.

1. The settings: a bad value stops here with one line naming the variable.
2. The platform's tables (`jhds_*`): opening the store migrates an older schema forward, in
   place, and refuses a schema newer than this image knows (the database was last used by a
   newer version: run that one, or restore the backup taken before the upgrade).
Exit codes: 2 bad settings, 3 store schema refused. Any other command is run as it is.
"""

from __future__ import annotations

import os
import sys


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
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        argv = ["jupyterhub", "-f", "/srv/jupyterhub/jupyterhub_config.py", "--upgrade-db"]
    if os.path.basename(argv[0]) == "jupyterhub" and (code := check()) != 0:
        return code
    os.execvp(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
