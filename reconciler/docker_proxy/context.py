"""A build's tar context, spooled to an unnamed temporary file (never memory; gone when
closed, whatever happens) so its Dockerfile is read before the engine sees anything, then
streamed to the engine from that file."""

from __future__ import annotations

import asyncio
import lzma
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from ..docker_requests import Refuse
from . import http1

MAX_DOCKERFILE = 4 * 1024 * 1024  # bytes; a Dockerfile is a few KiB
EXPANDS = 100  # times its size a compressed context may expand to while its Dockerfile is looked for
SYMLINK_HOPS = 40


async def spool(
    reader: asyncio.StreamReader, head: http1.Head, limit: int | None, folder: Path | None = None
) -> IO[bytes]:
    """The body in a temporary file in `folder`, at its start; `http1.TooLarge` beyond `limit` bytes."""
    spooled = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (the caller closes it: `with spooled`)
    try:
        async for chunk in http1.body_chunks(reader, head, limit):
            await asyncio.to_thread(spooled.write, chunk)
        spooled.seek(0)
    except BaseException:
        spooled.close()
        raise
    return spooled


async def chunks(spooled: IO[bytes]) -> AsyncIterator[bytes]:
    spooled.seek(0)
    while data := await asyncio.to_thread(spooled.read, http1.BLOCK):
        yield data


def read_dockerfile(spooled: IO[bytes], name: str) -> str | Refuse:
    """The Dockerfile `name` (a clean path inside the context; symbolic links followed inside
    it, as the engine follows them; `Dockerfile` falls back to `dockerfile`, as the engine's does)."""
    size = spooled.seek(0, 2)
    spooled.seek(0)
    try:
        with tarfile.open(fileobj=spooled, mode="r:*") as tar:
            members: dict[str, tarfile.TarInfo] = {}
            for member in tar:  # the last of a name wins, as when the engine unpacks it
                members[_clean(member.name)] = member
                if tar.offset > EXPANDS * size + 2**30:
                    return _unreadable("the build context expands too much to find its Dockerfile")
            found = _resolve(members, name)
            if found is None and name == "Dockerfile":
                found = _resolve(members, "dockerfile")
            if found is None:
                return _unreadable(f"Cannot locate specified Dockerfile: {name}")
            file = tar.extractfile(found)
            data = file.read(MAX_DOCKERFILE + 1) if file is not None else b""
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as e:
        return _unreadable(f"the build context is not a tar archive ({e})")
    if len(data) > MAX_DOCKERFILE:
        return _unreadable(f"over {MAX_DOCKERFILE} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        return _unreadable(f"not UTF-8 ({e})")


def _unreadable(message: str) -> Refuse:
    return Refuse("image build", 400, f"Dockerfile: {message}", "Dockerfile")


def _clean(path: str) -> str:
    return "/".join(p for p in path.split("/") if p not in ("", "."))


def _resolve(members: dict[str, tarfile.TarInfo], path: str) -> tarfile.TarInfo | None:
    """The regular file `path` names, its symbolic links followed and kept inside the context."""
    parts, done, hops = [p for p in path.split("/") if p not in ("", ".")], [], 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            done = done[:-1]
            continue
        done.append(part)
        member = members.get("/".join(done))
        if member is not None and member.issym():
            hops += 1
            if hops > SYMLINK_HOPS:
                return None
            done.pop()
            if member.linkname.startswith("/"):
                done = []
            parts = [p for p in member.linkname.split("/") if p not in ("", ".")] + parts
    member = members.get("/".join(done))
    return member if member is not None and (member.isfile() or member.islnk()) else None
