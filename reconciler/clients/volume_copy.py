"""Copying a user's volumes to new ones for a rename: one helper container for all of them
(`copy_script.py`), bounded like the backup helpers (the request's deadline run by the
engine's clock, stopped when the request is deleted, one of BACKUP_CONCURRENCY slots).
On Swarm it runs on the old name's node, where the volumes are (the placement moves with
the user)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vocabulary import naming
from vocabulary.settings import Settings

from .backups import (
    LABEL_HELPER,
    LABEL_REQUEST,
    REFUSED,
    TIMED_OUT,
    HelperDeadline,
    HelperFailed,
    HelperRefused,
    Helpers,
    HelperStopped,
    Job,
    bound,
)
from .docker import Engine

SCRIPT = (Path(__file__).parent / "copy_script.py").read_text()
# A file's content in the tree's checksum: CRC-32 (zlib); "sha256" also works, at 2x to 5x the CPU
# (benchmarks/rename.py --content both compares them).
CONTENT_SUM = "crc32"


async def copy_volumes(
    engine: Engine, settings: Settings, job: Job, user: str, moves: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    """Copy {key: (old volume, new volume)} of `user` and check each copy: `copied`, per key
    its `files`, `bytes` and tree `checksum`, and `seconds` (copy, total). HelperRefused if a
    copy differs (nothing removed)."""
    mounts: dict[str, dict[str, str]] = {}
    for key, (source, target) in moves.items():
        mounts[source] = {"bind": f"/src/{key}", "mode": "ro"}
        mounts[target] = {"bind": f"/dst/{key}", "mode": "rw"}
    name = naming.task_name(settings.platform_id, "rename", user, job.name)
    labels = {naming.LABEL_PLATFORM: settings.platform_id, LABEL_HELPER: "rename", LABEL_REQUEST: job.label}
    command, wait = await job.bounded(
        ["python3", "-c", SCRIPT, json.dumps({"volumes": list(moves), "content": CONTENT_SUM})]
    )
    helpers = Helpers(engine, settings, job)
    async with bound(settings):
        code, output, stopped = await helpers._watched(
            name, settings.backup_helper_image, command, mounts, labels, user, wait
        )
    lines = output.strip().splitlines()
    if stopped:
        raise HelperStopped(f"stopped: {job.cancelled}")
    if wait is not None and code == TIMED_OUT:
        raise HelperDeadline(f"killed at the deadline of {job.label} (activeDeadlineSeconds)")
    if code == REFUSED:
        raise HelperRefused(json.loads(lines[-1])["refused"])
    if code != 0:
        raise HelperFailed((lines[-1] if lines else f"exit code {code}")[-500:])
    return dict(json.loads(lines[-1]))
