"""The real engine, as the proxy talks to it: one connection per request to its Unix socket
(cheap, and a stream or a hijacked connection is then simply the connection's life)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from . import http1
from .splice import SpliceReader

MAX_ANSWER = 64 * 1024 * 1024  # an answer read whole (a listing, an inspection)


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class EngineError(Exception):
    pass


def target(path: str, query: Mapping[str, Sequence[str]] | None = None) -> str:
    qs = urlencode([(k, v) for k, values in (query or {}).items() for v in values])
    return quote(path, safe="/:@!$&'()*+,;=-._~") + (f"?{qs}" if qs else "")


class EngineClient:
    def __init__(self, socket_path: str, timeout: float = 30.0):
        self.socket_path = socket_path
        self.timeout = timeout

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """As `asyncio.open_unix_connection`, with a reader that can hand a stream over."""
        loop = asyncio.get_running_loop()
        reader = SpliceReader(limit=http1.MAX_HEAD, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await loop.create_unix_connection(lambda: protocol, self.socket_path)
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    async def call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Sequence[str]] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Answer:
        """One request, its whole answer (JSON body when `body` is not None), within the timeout."""
        async with asyncio.timeout(timeout or self.timeout):
            reader, writer = await self.connect()
            try:
                payload = json.dumps(body).encode() if body is not None else b""
                writer.write(request_bytes(method, target(path, query), payload, json_body=body is not None))
                await writer.drain()
                head = await http1.read_head(reader, request=False)
                if head is None:
                    raise EngineError("the engine closed the connection without an answer")
                data = await read_answer(reader, head, method)
                return Answer(head.status, head.headers, data)
            finally:
                writer.close()

    async def json(self, method: str, path: str, query: Mapping[str, Sequence[str]] | None = None) -> Any:
        """The JSON answer of a read; None when the engine answers 404."""
        answer = await self.call(method, path, query)
        if answer.status == 404:
            return None
        if answer.status >= 300:
            raise EngineError(f"{method} {path}: {answer.status} {answer.body[:200]!r}")
        return answer.json()


def request_bytes(
    method: str, target: str, payload: bytes, json_body: bool, extra: list[tuple[str, str]] | None = None
) -> bytes:
    headers = [("Host", "docker"), ("Connection", "close"), *(extra or [])]
    if json_body:
        headers.append(("Content-Type", "application/json"))
    if payload or method in ("POST", "PUT"):
        headers.append(("Content-Length", str(len(payload))))
    return http1.encode_head(f"{method} {target} HTTP/1.1", headers) + payload


async def read_answer(reader: asyncio.StreamReader, head: http1.Head, method: str) -> bytes:
    """A whole answer's body (bounded), whatever its framing."""
    if method == "HEAD" or head.status in (204, 304) or head.status < 200:
        return b""
    if head.get("content-length") or head.chunked():
        return await http1.read_body(reader, head, MAX_ANSWER)
    data = await reader.read(MAX_ANSWER + 1)  # until close
    while len(data) <= MAX_ANSWER and (more := await reader.read(MAX_ANSWER + 1 - len(data))):
        data += more
    if len(data) > MAX_ANSWER:
        raise EngineError(f"an answer over {MAX_ANSWER} bytes")
    return data
