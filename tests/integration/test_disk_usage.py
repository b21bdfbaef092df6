"""The engine's disk-usage report on the real engine: Docker runs one at a time and answers
any other caller "a disk usage operation is already running" meanwhile (this platform's
surveys, the hub's volume sizes, another platform on the same engine). Every caller gets
the report: it waits for the running one to end. Found by a CI run, where the home page's
volume list failed while a usage survey ran."""

from __future__ import annotations

import asyncio

import docker

from reconciler.clients.docker import Engine


def test_reports_asked_for_at_once_all_answer(engine: docker.DockerClient) -> None:
    async def at_once() -> list[dict[str, int | None]]:
        engines = [Engine() for _ in range(6)]  # a client each, as separate processes have
        try:
            return await asyncio.gather(*(e.volume_sizes() for e in engines))
        finally:
            for e in engines:
                e.close()

    answers = asyncio.run(at_once())
    assert len(answers) == 6 and all(isinstance(a, dict) for a in answers)
