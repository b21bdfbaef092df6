"""Moving a user's volumes to new ones for a rename: one helper container for all of them
(`copy_script.py`), bounded like the backup helpers (the request's deadline run by the
engine's clock, stopped when the request is deleted, one of BACKUP_CONCURRENCY slots).
On Swarm it runs on the old name's node, where the volumes are (the placement moves with
the user).

The helper copies every volume at once and checks each copy by a checksum of the whole
tree; only when all are verified does it mark the old volumes (with `token`, the request's
own secret) and empty them, so the engine's removal afterwards is quick. A helper that
stops half-way leaves either every original whole or every copy verified; `survey` tells
which."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vocabulary import naming
from vocabulary.settings import Settings

from .backups import Helpers, Job, bound
from .docker import Engine, HelperMount

SCRIPT = (Path(__file__).parent / "copy_script.py").read_text()
# A file's content in the tree's checksum: coreutils `cksum` (a CRC; zlib's CRC-32 where the
# image's cksum lacks -z); "sha256" also works at 5x to 10x the CPU (benchmarks/rename.py --content both).
CONTENT_SUM = "cksum"
SURVEY_SECONDS = 120  # a survey only reads a marker per volume


def _mounts(moves: dict[str, tuple[str, str]], targets: bool = True) -> list[HelperMount]:
    """Each volume twice (`copy_script.Mounts`): read-only to read, read-write to write."""
    mounts = []
    for key, (source, target) in moves.items():
        mounts += [HelperMount(source, f"/src/{key}", True), HelperMount(source, f"/old/{key}")]
        if targets:
            mounts += [HelperMount(target, f"/dst/{key}"), HelperMount(target, f"/new/{key}", True)]
    return mounts


async def move_volumes(
    engine: Engine, settings: Settings, job: Job, user: str, moves: dict[str, tuple[str, str]], token: str
) -> dict[str, Any]:
    """Move {key: (old volume, new volume)} of `user`: `copied`, per key its `files`, `bytes`,
    tree `checksum` and whether it was `resumed` (verified by an earlier helper), and
    `seconds` (copy, verify, clear). HelperRefused if a copy differs (nothing removed)."""
    name = naming.task_name(settings.platform_id, "rename", user, job.name)
    args = {"volumes": list(moves), "token": token, "content": CONTENT_SUM}
    async with bound(settings):
        return await Helpers(engine, settings, job).run_program(
            name, "rename", ["python3", "-c", SCRIPT, json.dumps(args)], _mounts(moves), user
        )


async def committed_volumes(
    engine: Engine, settings: Settings, job_name: str, user: str, moves: dict[str, tuple[str, str]], token: str
) -> list[str]:
    """The keys whose old volume carries this request's marker: the copies were all verified
    and the originals may be emptied. Only the old volumes are mounted; bounded by its own
    short wait (it runs after a failure, when the request's deadline may be past)."""
    name = naming.task_name(settings.platform_id, "rename-survey", user, job_name)
    args = {"op": "survey", "volumes": list(moves), "token": token}
    command = ["timeout", "-k", "5", f"{SURVEY_SECONDS}s", "python3", "-c", SCRIPT, json.dumps(args)]
    found = await Helpers(engine, settings).run_program(name, "rename", command, _mounts(moves, targets=False), user)
    return list(found["committed"])
