"""The Docker proxy's pure parts (issue 25): the wire (strict on what a client frames), the
route match and path rewrite, the build's id found in its output, lists narrowed to the
records, the records in the store, and the engine-wide survey recognising the proxy's
containers by recorded ids only. The proxy against the real engine and the real `docker`
CLI: tests/integration/test_docker_proxy.py."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from reconciler.controllers.engineaccess import survey_engine
from reconciler.docker_objects import DockerObjects, new
from reconciler.docker_proxy import http1
from reconciler.docker_proxy.after import After, BuildSniffer
from reconciler.docker_proxy.ledger import Ledger
from reconciler.docker_proxy.server import _rewrite, match
from reconciler.docker_proxy.splice import SpliceReader, splice
from reconciler.store import Store
from vocabulary import naming

ID = "f" * 64


def parse(raw: bytes) -> tuple[http1.Head | None, asyncio.StreamReader]:
    async def go() -> tuple[http1.Head | None, asyncio.StreamReader]:
        reader = asyncio.StreamReader(limit=http1.MAX_HEAD)
        reader.feed_data(raw)
        reader.feed_eof()
        return await http1.read_head(reader, request=True), reader

    return asyncio.run(go())


def body(raw: bytes, limit: int | None = None) -> bytes:
    async def go() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        head = await http1.read_head(reader, request=True)
        assert head is not None
        return b"".join([c async for c in http1.body_chunks(reader, head, limit)])

    return asyncio.run(go())


def test_a_request_head_is_read_strictly() -> None:
    head, _ = parse(b"POST /v1.41/containers/create?name=x HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\n\r\n{}")
    assert head is not None and head.first == ("POST", "/v1.41/containers/create?name=x", "HTTP/1.1")
    assert head.body_length() == 2 and head.get("HOST") == "docker"
    assert parse(b"")[0] is None  # a clean end between requests
    smuggled = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
    twice = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"
    odd = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    for raw in (smuggled, twice, odd):
        with pytest.raises(http1.BadMessage):
            head, _ = parse(raw)
            assert head is not None
            head.body_length()
    with pytest.raises(http1.BadMessage):
        parse(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")


def test_a_chunked_body_is_unframed_and_bounded() -> None:
    raw = b"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    assert body(raw) == b"abcde"
    with pytest.raises(http1.TooLarge):
        body(raw, limit=4)
    with pytest.raises(http1.BadMessage):
        body(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")


def test_the_route_and_the_object_a_path_names() -> None:
    assert match("GET", "/v1.41/containers/web/json") == ("container inspect", "web")
    assert match("POST", "/containers/create") == ("container create", "")
    assert match("GET", "/v1.41/images/library/postgres:16/json") == ("image inspect", "library/postgres:16")
    assert match("GET", "/v1.41/plugins/x/json") == ("plugin inspect", "x")
    assert match("POST", "/v1.41/swarm/init") == ("POST /swarm/init", "")
    # The name checked is the object the engine acts on: the path carries the id it resolved to.
    assert _rewrite("/v1.41/containers/web/attach", "web", ID) == f"/v1.41/containers/{ID}/attach"


def test_the_built_image_is_read_from_the_build_output_and_a_step_cannot_forge_it() -> None:
    sniff = BuildSniffer()
    forged = json.dumps({"stream": '{"aux":{"ID":"sha256:' + "e" * 64 + '"}}\n'}).encode()
    sniff(forged)
    assert sniff.image_id is None  # a RUN step's output comes inside a JSON string, quotes escaped
    real = json.dumps({"aux": {"ID": "sha256:" + "a" * 64}}, separators=(",", ":")).encode()
    sniff(real[:20])
    sniff(real[20:])  # split across chunks
    assert sniff.image_id == "sha256:" + "a" * 64


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield s
    s.close()


def test_records_are_kept_by_id_and_forgotten_only_for_their_user(store: Store) -> None:
    objects = DockerObjects(store)
    objects.record("ann", [new("container", ID, "web", memory=1024, cpus=0.5), new("volume", "data", "data")])
    objects.record("bob", [new("container", "b" * 64, "db")])
    assert {o.id for o in objects.of_user("ann")} == {ID, "data"}
    assert objects.owners("container") == {ID: "ann", "b" * 64: "bob"}
    assert objects.forget("bob", [ID]) == 0  # not bob's
    assert objects.forget("ann", [ID]) == 1
    assert objects.owners("container") == {"b" * 64: "bob"}


def test_lists_show_only_what_the_records_give_the_user(store: Store) -> None:
    ledger = Ledger(DockerObjects(store))

    async def go() -> tuple[bytes, bytes]:
        await ledger.add("ann", [new("container", ID, "web"), new("volume", "data", "data")])

        async def audit(_: object) -> None:
            return None

        after = After(None, ledger, audit, {})  # type: ignore[arg-type]
        # A container carrying ann's owner label that the proxy did not make (labels can be copied).
        listed = json.dumps([{"Id": ID}, {"Id": "c" * 64, "Labels": {naming.LABEL_DOCKER_OWNER: "ann"}}]).encode()
        volumes = json.dumps({"Volumes": [{"Name": "data"}, {"Name": "other"}], "Warnings": None}).encode()
        return after.narrowed("ann", "container list", listed), after.narrowed("ann", "volume list", volumes)

    containers, volumes = asyncio.run(go())
    assert [c["Id"] for c in json.loads(containers)] == [ID]
    assert [v["Name"] for v in json.loads(volumes)["Volumes"]] == ["data"]


def running(name: str, **facts: object) -> dict:
    return {"id": f"{name:0<64}"[:64], "name": name, "labels": {}, "created": 0, **facts}


def test_the_survey_knows_the_proxys_containers_by_recorded_ids_not_labels() -> None:
    web, side = running("web"), running("side", network_mode="container:web", pid_mode="container:web")
    label = {naming.LABEL_DOCKER_OWNER: "ann", naming.LABEL_DOCKER_PLATFORM: "p"}
    copied = {**running("copy", network_mode="container:web"), "labels": label}
    theirs = running("theirs", network_mode="container:web")
    proxied = {web["id"]: "ann", side["id"]: "ann", theirs["id"]: "bob"}
    rows = survey_engine([web, side, copied, theirs], "p", "/var/run/docker.sock", [], {}, 1.0, 0, proxied).rows
    # ann's sidecar of her own container passes; a labelled copy nobody recorded, and bob's
    # container in ann's namespace, do not.
    assert [r.container for r in rows] == ["copy", "theirs"]
    privileged = running("priv", privileged=True)
    rows = survey_engine([privileged], "p", "/var/run/docker.sock", [], {}, 1.0, 0, {privileged["id"]: "ann"}).rows
    assert [(r.container, r.user) for r in rows] == [("priv", "ann")]  # recorded is no licence for the rest


def test_a_stream_is_handed_over_whole_and_in_order() -> None:
    """What the reader held past the head (enough that it paused the connection), then many
    small pieces (a followed log), arrive
    at the client as the engine sent them, and the hand-over ends with the engine's end."""

    async def go() -> bytes:
        loop = asyncio.get_running_loop()
        engine, proxy_side = socket.socketpair()
        proxy_client, client = socket.socketpair()
        for s in (engine, client):
            s.setblocking(False)
        reader = SpliceReader(limit=1024, loop=loop)  # it pauses its connection beyond 2 KiB held
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, proxy_side)
        engine_writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        _, client_writer = await asyncio.open_connection(sock=proxy_client)
        await loop.sock_sendall(engine, b"HTTP/1.1 200 OK\r\n\r\n" + b"held-" * 2000)
        assert await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.01)
        handing = asyncio.ensure_future(splice((reader, engine_writer), client_writer))
        for i in range(2000):
            await loop.sock_sendall(engine, b"line %d\n" % i)
        engine.close()
        await asyncio.wait_for(handing, 10)
        client_writer.close()
        received = b""
        while data := await loop.sock_recv(client, 65536):
            received += data
        client.close()
        return received

    expected = b"held-" * 2000 + b"".join(b"line %d\n" % i for i in range(2000))
    assert asyncio.run(asyncio.wait_for(go(), 20)) == expected  # a stalled hand-over fails, not hangs
