"""Sending an allowed request to the engine, and its answer back: whole (read, checked,
maybe narrowed), as a stream (copied as bytes until either side closes), or hijacked
(attach and exec: after the engine's `101`, raw bytes both ways)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import IO, Any

from . import http1
from .context import chunks
from .engine import EngineClient, read_answer, request_bytes, target

# Answers that run as long as they like: no timeout, they end when either side closes.
STREAMS = frozenset(
    {
        "events",
        "container logs",
        "container stats",
        "container attach",
        "container wait",
        "exec start",
        "image build",
        "image pull",
        "container archive",
    }
)
HIJACKS = frozenset({"container attach", "exec start"})
RAW_TYPES = ("application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream")
PASSED = ("user-agent", "x-registry-auth", "x-registry-config")  # what of a client's headers reaches the engine


class BodyTooLarge(Exception):
    pass


class Forward:
    """One allowed request on its own engine connection."""

    def __init__(self, engine: EngineClient, timeout: float):
        self.engine, self.timeout = engine, timeout

    async def send(
        self,
        head: http1.Head,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        stream_from: asyncio.StreamReader | IO[bytes] | None,
        max_body: int | None,
        hijack: bool,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, http1.Head]:
        """The request (the rewritten query and body, never the client's bytes) written;
        the engine's connection and the head of its answer."""
        extra = [(k, v) for k, v in head.headers if k.lower() in PASSED]
        if hijack:
            extra += [("Upgrade", "tcp")]
        reader, writer = await self.engine.connect()
        try:
            if stream_from is None:
                payload = json.dumps(body).encode() if body is not None else b""
                first = request_bytes(method, target(path, query), payload, json_body=body is not None, extra=extra)
                if hijack:  # the engine keeps the connection for the raw stream
                    first = first.replace(b"Connection: close\r\n", b"Connection: Upgrade\r\n", 1)
                writer.write(first)
                await writer.drain()
                answer = await http1.read_head(reader, request=False)
            else:
                answer = await self._stream_body(
                    head, method, path, query, extra, stream_from, max_body, reader, writer
                )
        except BaseException:
            writer.close()
            raise
        if answer is None:
            writer.close()
            raise http1.BadMessage("the engine closed the connection without an answer", 502)
        return reader, writer, answer

    async def _stream_body(
        self,
        head: http1.Head,
        method: str,
        path: str,
        query: dict[str, list[str]],
        extra: list[tuple[str, str]],
        source: asyncio.StreamReader | IO[bytes],
        max_body: int | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> http1.Head | None:
        """A tar body (a `docker cp` in) copied as it arrives, cut at `max_body`, or a
        build's context from the file it was spooled to; the engine may answer before it
        has all of it (an error)."""
        headers = [("Host", "docker"), ("Connection", "close"), *extra, ("Transfer-Encoding", "chunked")]
        headers.append(("Content-Type", head.get("content-type") or "application/x-tar"))
        writer.write(http1.encode_head(f"{method} {target(path, query)} HTTP/1.1", headers))

        async def pump() -> None:
            streaming = isinstance(source, asyncio.StreamReader)
            body = http1.body_chunks(source, head, max_body) if streaming else chunks(source)  # type: ignore[arg-type]
            async for chunk in body:
                writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

        pumping = asyncio.ensure_future(pump())
        answering = asyncio.ensure_future(http1.read_head(reader, request=False))
        try:
            await asyncio.wait([pumping, answering], return_when=asyncio.FIRST_COMPLETED)
            if pumping.done() and (e := pumping.exception()) is not None:
                if isinstance(e, http1.TooLarge):
                    raise BodyTooLarge(str(e.limit)) from e
                raise e
            return await answering
        finally:
            for task in (pumping, answering):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def whole(self, reader: asyncio.StreamReader, answer: http1.Head, method: str) -> bytes:
        async with asyncio.timeout(self.timeout):
            return await read_answer(reader, answer, method)


async def pipe_both_ways(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter], engine: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    """A hijacked connection: raw bytes both ways. The client closing its side (stdin done)
    is passed on as a half-close; the engine closing ends it all."""

    async def upstream() -> None:
        await http1.copy_until_closed(client[0], engine[1])
        if engine[1].can_write_eof():
            engine[1].write_eof()
        await asyncio.Event().wait()  # the output may still come: only the engine ends it

    await first_of(upstream(), http1.copy_until_closed(engine[0], client[1]))


async def until_client_leaves(client: asyncio.StreamReader, copying: Awaitable[None]) -> None:
    """A stream copied until it ends or the client goes away (whichever is first). The
    client sends nothing more on this connection (it is told `Connection: close`)."""

    async def gone() -> None:
        while await client.read(4096):
            pass

    await first_of(gone(), copying)


async def first_of(*aws: Awaitable[None]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and (e := task.exception()) is not None and not isinstance(e, ConnectionError):
                raise e
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


def relayed_head(answer: http1.Head, close: bool) -> bytes:
    """The engine's head for the client (its framing kept: the body follows as it came)."""
    upgraded = answer.status == 101  # its Connection: Upgrade stays; the engine's `close` is ours alone
    headers = [(k, v) for k, v in answer.headers if k.lower() != "connection" or upgraded]
    if close:
        headers.append(("Connection", "close"))
    return http1.encode_head(f"HTTP/1.1 {answer.first[1]} {answer.first[2]}", headers)


Sniff = Callable[[bytes], None]
