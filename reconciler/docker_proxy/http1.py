"""HTTP/1.1 framing over asyncio streams: what the proxy reads from a lab's docker CLI and
from the engine, and how it writes requests and answers.

Asyncio streams, not aiohttp: the attach and exec streams switch protocols (`101`, then raw
bytes both ways on the same connection), which aiohttp's server and client do not hand
over; and a long stream (a 100 MB `logs -f`) is copied as bytes, never re-framed.

Strict on what a client sends (one Content-Length, or chunked, never both; bounded heads
and bodies): the proxy never forwards a client's bytes as they came, it writes its own
request, so nothing a client frames oddly reaches the engine.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
BLOCK = 256 * 1024
TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
REASONS |= {413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}
REASONS |= {504: "Gateway Timeout"}


class BadMessage(Exception):
    """A request (or an engine's answer) that is not well-formed HTTP/1.1."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Head:
    first: tuple[str, str, str]  # request: method, target, version; response: version, status, reason
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), default)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def status(self) -> int:
        return int(self.first[1])

    def body_length(self) -> int | None:
        """Content-Length, or None when chunked (or neither)."""
        lengths, chunked = self.all("content-length"), self.get("transfer-encoding")
        if chunked:
            if lengths or chunked.strip().lower() != "chunked":
                raise BadMessage("Transfer-Encoding: only chunked, and never with Content-Length")
            return None
        if len(lengths) > 1 or (lengths and not lengths[0].strip().isdigit()):
            raise BadMessage("one Content-Length, a number")
        return int(lengths[0]) if lengths else 0

    def chunked(self) -> bool:
        return bool(self.get("transfer-encoding"))


async def read_head(reader: asyncio.StreamReader, request: bool) -> Head | None:
    """The next head; None at a clean end of the stream (before any byte of a head)."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise BadMessage("the stream ended inside a head") from e
    except asyncio.LimitOverrunError as e:
        raise BadMessage(f"a head over {MAX_HEAD} bytes", 431) from e
    lines = raw[:-4].split(b"\r\n")
    first = lines[0].decode("latin-1").split(" ", 2)
    if len(first) < 3 and not (not request and len(first) == 2):
        raise BadMessage("a malformed first line")
    if request and not first[2].startswith("HTTP/1."):
        raise BadMessage("HTTP/1.x only")
    head = Head((first[0], first[1], first[2] if len(first) > 2 else ""))
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN.match(name):
            raise BadMessage(f"a malformed header line {line[:40]!r}")
        head.headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    return head


async def body_chunks(reader: asyncio.StreamReader, head: Head, limit: int | None = None) -> AsyncIterator[bytes]:
    """A message's body as it arrives, de-framed; `TooLarge` beyond `limit` bytes."""
    seen = 0

    def count(n: int) -> None:
        nonlocal seen
        seen += n
        if limit is not None and seen > limit:
            raise TooLarge(limit)

    length = head.body_length()
    if length is not None:
        while length > 0:
            data = await reader.read(min(length, BLOCK))
            if not data:
                raise BadMessage("the body ended early")
            length -= len(data)
            count(len(data))
            yield data
        return
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or not re.fullmatch(rb"[0-9a-fA-F]{1,15}", size_text):
            raise BadMessage("a malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers: read and dropped
                pass
            return
        count(size)
        while size > 0:
            data = await reader.read(min(size, BLOCK))
            if not data:
                raise BadMessage("the body ended early")
            size -= len(data)
            yield data
        if await reader.readexactly(2) != b"\r\n":
            raise BadMessage("a chunk not ended by CRLF")


class TooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


async def read_body(reader: asyncio.StreamReader, head: Head, limit: int) -> bytes:
    return b"".join([chunk async for chunk in body_chunks(reader, head, limit)])


def encode_head(first: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [first, *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def response(status: int, body: bytes, headers: list[tuple[str, str]], close: bool = False) -> bytes:
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding", "connection")]
    kept.append(("Content-Length", str(len(body))))
    if close:
        kept.append(("Connection", "close"))
    return encode_head(f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", kept) + body


async def copy_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes as they come, until the reader's end (a stream, or a hijacked connection)."""
    while data := await reader.read(BLOCK):
        writer.write(data)
        await writer.drain()


async def copy_chunked(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sniff: Callable[[bytes], None]
) -> None:
    """A chunked body copied chunk by chunk, each payload shown to `sniff` (a build's
    output, where the image's id is), up to the last chunk."""
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return
        data = await reader.readexactly(size + 2)
        sniff(data[:-2])
        writer.write(line + data)
        await writer.drain()
