"""`hubctl`: the platform's command line, with kubectl's verbs and manners.

Talks to the hub's REST API (`JUPYTERHUB_URL`, `JUPYTERHUB_API_TOKEN`, or `--url`,
`--token`). Exit codes: 0 success, 1 validation or apply errors (and, for `diff`,
differences found; for `wait` and `reconcile`, not met within the timeout), 2 usage or
connection errors.

Each verb is declared once, beside its function (`registry.Verbs`), in its family's module:
`resources` (validate, apply, diff, get, describe, delete), `operations` (events, suspend,
resume, reconcile, wait, get -w), `views` (what the hub computes: get privileged, servers,
effective, placements; move-user), `local` (schema, run, settings). `main` builds the parser
from those declarations.
"""

from .main import main

__all__ = ["main"]
