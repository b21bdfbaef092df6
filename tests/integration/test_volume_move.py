"""The rename's volume move on the real engine, without a hub (the hub's side is
test_rename.py): the helper copies every volume, verifies each, then empties the originals
but for this request's marker; a re-run after that (a helper killed while emptying) finds
the marker and never copies a half-emptied original; the survey that decides whether a
failed rename can be undone sees the marker, and only this request's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import docker
import pytest

from reconciler.clients.backups import Job
from reconciler.clients.copy_script import MARKER
from reconciler.clients.docker import Engine
from reconciler.clients.volume_copy import committed_volumes, move_volumes
from tests.harness import TEST_PLATFORM, cleanup_docker
from tests.integration.backup_volumes import IMAGE
from vocabulary import naming
from vocabulary.settings import load_settings

PLATFORM = f"{TEST_PLATFORM}-move"
TOKEN = "0123456789abcdef" * 2
FILL = (
    "mkdir -p /v/data && head -c 4000000 /dev/urandom > /v/data/a.bin && echo hi > /v/notes.txt"
    " && ln -s data/a.bin /v/link && chown -R 1000:100 /v"
)


@pytest.fixture
def volumes(engine: docker.DockerClient) -> Iterator[dict[str, tuple[str, str]]]:
    moves = {key: (f"{PLATFORM}-mv-ann_{key}", f"{PLATFORM}-mv-anna_{key}") for key in ("home", "workspace")}
    labels = {naming.LABEL_PLATFORM: PLATFORM}
    for source, target in moves.values():
        for name in (source, target):
            engine.volumes.create(name, labels=labels)
        engine.containers.run(IMAGE, ["sh", "-c", FILL], volumes={source: {"bind": "/v"}}, user="0", remove=True)
    yield moves
    cleanup_docker(engine, PLATFORM)


def listing(engine: docker.DockerClient, volume: str) -> str:
    command = ["sh", "-c", "cd /v && find . -printf '%p %y %m %u %g %s %l\\n' | sort && cat data/a.bin | cksum"]
    out = engine.containers.run(IMAGE, command, volumes={volume: {"bind": "/v", "mode": "ro"}}, remove=True)
    return out.decode()


def test_the_move_verifies_then_empties_and_a_rerun_trusts_only_its_marker(engine, volumes) -> None:
    settings = load_settings({"PLATFORM_ID": PLATFORM})
    before = {key: listing(engine, source) for key, (source, _) in volumes.items()}
    job = Job("UserRename", "mv-test")

    moved = asyncio.run(move_volumes(Engine(), settings, job, "mv-ann", volumes, TOKEN))
    assert [c["volume"] for c in moved["copied"]] == ["home", "workspace"] and moved["content"] == "cksum"
    assert not any(c["resumed"] for c in moved["copied"])
    for key, (source, target) in volumes.items():
        assert listing(engine, target) == before[key]  # every entry, owner, mode, link, content
        left = engine.containers.run(IMAGE, ["ls", "-A", "/v"], volumes={source: {"bind": "/v"}}, remove=True)
        assert left.decode().split() == [MARKER]  # emptied, but for this request's marker
    assert asyncio.run(committed_volumes(Engine(), settings, "mv-test", "mv-ann", volumes, TOKEN)) == [
        "home",
        "workspace",
    ]
    assert asyncio.run(committed_volumes(Engine(), settings, "mv-test", "mv-ann", volumes, "x" * 32)) == []

    again = asyncio.run(move_volumes(Engine(), settings, job, "mv-ann", volumes, TOKEN))  # a re-run
    assert all(c["resumed"] for c in again["copied"])
    assert [c["checksum"] for c in again["copied"]] == [c["checksum"] for c in moved["copied"]]
    for key, (_, target) in volumes.items():
        assert listing(engine, target) == before[key]
