"""The Docker proxy of `limited` access against the real engine, driven by the real `docker`
CLI (issue 25): a socket per user, each seeing only their own; no way out; quotas; the
streams (`logs -f`, `exec -it` through the HTTP upgrade, `build`, `cp` both ways); volumes;
the audit; the records the engine-wide survey reads. No hub: the proxy is built directly on
a store of its own, with this run's platform label on everything it makes."""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from reconciler.docker_objects import DockerObjects
from reconciler.docker_proxy import AuditEvent, DockerProxy
from reconciler.docker_requests import Quota
from reconciler.store import Store
from tests.harness import TEST_PLATFORM
from vocabulary import naming

PLATFORM = f"{TEST_PLATFORM}-dproxy"
IMAGE = "jupyterhub-ds/base:bookworm"
MIB = 2**20
QUOTA = Quota(max_containers=3, memory=256 * MIB, cpus=1.0, build_context=20 * MIB)


@dataclass
class Proxied:
    proxy: DockerProxy
    store: Store
    sockets: dict[str, Path]
    audit: list[tuple[str, AuditEvent]] = field(default_factory=list)

    def docker(self, user: str, *args: str, check: bool = False, timeout: float = 120, **env: str):
        """The `docker` CLI on the user's socket: (exit code, stdout, stderr)."""
        command = ["docker", "-H", f"unix://{self.sockets[user]}", *args]
        environ = {**os.environ, "DOCKER_BUILDKIT": "0", **env}
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environ)
        if check:
            assert done.returncode == 0, f"{shlex.join(command)}: {done.stderr}"
        return done.returncode, done.stdout, done.stderr

    def run(self, user: str, *args: str) -> str:
        """A detached container of the user's, its id."""
        return self.docker(user, "run", "-d", "--network", "none", *args, check=True)[1].strip()


def cleanup(client: docker.DockerClient) -> None:
    for label in (naming.LABEL_DOCKER_PLATFORM, naming.LABEL_PLATFORM):
        for c in client.containers.list(all=True, filters={"label": f"{label}={PLATFORM}"}):
            c.remove(force=True, v=True)
        for v in client.volumes.list(filters={"label": f"{label}={PLATFORM}"}):
            v.remove(force=True)
        for n in client.networks.list(filters={"label": f"{label}={PLATFORM}"}):
            n.remove()
        for i in client.images.list(filters={"label": f"{label}={PLATFORM}"}):
            client.images.remove(i.id, force=True)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    client = docker.from_env()
    cleanup(client)
    folder = tmp_path_factory.mktemp("dproxy")
    store = Store(f"sqlite:///{folder / 'db.sqlite'}")
    found: list[tuple[str, AuditEvent]] = []
    proxy = DockerProxy(
        folder / "sockets",
        store,
        PLATFORM,
        "/var/run/docker.sock",
        lambda user, event: found.append((user, event)),
        reserved_names=(f"{PLATFORM}-lab-",),
    )
    proxy.start()

    async def open_all() -> dict[str, Path]:
        return {user: await proxy.open(user, QUOTA) for user in ("ann", "bob", "cleo", "eli")}

    try:
        yield Proxied(proxy, store, asyncio.run(open_all()), found)
    finally:
        asyncio.run(proxy.shutdown())
        store.close()
        cleanup(client)
        client.close()


def test_each_user_sees_and_touches_only_their_own(proxied: Proxied) -> None:
    client = docker.from_env()
    mine = proxied.run("ann", "--name", f"{PLATFORM}-ann-web", IMAGE, "sleep", "300")
    theirs = proxied.run("bob", "--name", f"{PLATFORM}-bob-web", IMAGE, "sleep", "300")
    # The platform's own container, and one carrying ann's owner label the proxy never made.
    lab = client.containers.create(IMAGE, "true", name=f"{PLATFORM}-lab", labels={naming.LABEL_PLATFORM: PLATFORM})
    labels = {naming.LABEL_DOCKER_OWNER: "ann", naming.LABEL_DOCKER_PLATFORM: PLATFORM}
    copied = client.containers.create(IMAGE, "true", name=f"{PLATFORM}-copied", labels=labels)
    listed = proxied.docker("ann", "ps", "-a", "-q", "--no-trunc", check=True)[1].split()
    assert listed == [mine]
    for ref in (theirs, f"{PLATFORM}-bob-web", theirs[:12], lab.id, copied.id, f"{PLATFORM}-copied"):
        for verb in (("inspect", "--type", "container"), ("stop",), ("rm", "-f"), ("logs",)):
            code, _, err = proxied.docker("ann", *verb, ref)
            assert (code != 0 or verb[0] == "rm") and "No such container" in err, (verb, ref, err)  # rm -f: exit 0
    code, _, err = proxied.docker("ann", "exec", f"{PLATFORM}-bob-web", "true")
    assert code != 0 and "No such container" in err
    assert client.containers.get(theirs).status == "running"
    assert {c.id for c in client.containers.list(all=True)} >= {lab.id, copied.id}
    # The records say whose it is: the survey reads them, not the labels.
    owners = DockerObjects(proxied.store).owners("container")
    assert owners[mine] == "ann" and owners[theirs] == "bob" and copied.id not in owners


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--privileged"], "HostConfig.Privileged"),
        (["-v", "/:/host"], "HostConfig.Binds"),
        (["--mount", "type=bind,src=/etc,dst=/x"], "HostConfig.Mounts"),
        (["--cap-add", "SYS_ADMIN"], "HostConfig.CapAdd"),
        (["--pid", "host"], "HostConfig.PidMode"),
        (["--userns", "host"], "HostConfig.UsernsMode"),
        (["--sysctl", "net.ipv4.ip_forward=1"], "HostConfig.Sysctls"),
        (["--device", "/dev/mem"], "HostConfig.Devices"),
        (["--security-opt", "seccomp=unconfined"], "HostConfig.SecurityOpt"),
        (["-p", "0.0.0.0:18080:80"], "HostConfig.PortBindings"),
        (["--name", f"{PLATFORM}-lab-ann"], "Name"),
    ],
)
def test_no_way_out_is_refused_naming_the_field(proxied: Proxied, flags: list[str], named: str) -> None:
    code, _, err = proxied.docker("bob", "create", "--network", "none", *flags, IMAGE, "true")
    assert code != 0 and f"{named}:" in err, err
    assert ("bob", "refused") in {(u, e.kind) for u, e in proxied.audit if e.object == named or named == "Name"}


def test_the_quota_answers_409_with_the_numbers(proxied: Proxied) -> None:
    code, _, err = proxied.docker("cleo", "create", "--network", "none", "-m", "1g", IMAGE, "true")
    assert code != 0 and "HostConfig.Memory:" in err and "at most 256 MiB" in err, err
    made = [proxied.docker("cleo", "create", "--network", "none", IMAGE, "true", check=True)[1] for _ in range(3)]
    assert len(made) == 3
    code, _, err = proxied.docker("cleo", "create", "--network", "none", IMAGE, "true")
    assert code != 0 and "containers: 3 of at most 3 exist" in err, err
    limits = docker.from_env().api.inspect_container(made[0].strip())["HostConfig"]
    assert limits["Memory"] == 256 * MIB and limits["NanoCpus"] == 10**9 and limits["PidsLimit"] == 1024
    proxied.docker("cleo", "container", "prune", "-f", check=True)  # frees them
    assert proxied.docker("cleo", "create", "--network", "none", IMAGE, "true")[0] == 0


def test_logs_follow_and_an_interactive_exec_stream_through(proxied: Proxied) -> None:
    script = "for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done"
    name = f"{PLATFORM}-ann-logs"
    proxied.run("ann", "--name", name, IMAGE, "sh", "-c", script)
    _, out, _ = proxied.docker("ann", "logs", "-f", name, check=True, timeout=30)
    assert out.split("\n")[:5] == [f"line {i}" for i in range(1, 6)]
    proxied.docker("ann", "rm", name, check=True)  # within ann's count of 3
    web = f"{PLATFORM}-ann-tty"
    proxied.run("ann", "--name", web, IMAGE, "sleep", "300")
    sock = proxied.sockets["ann"]
    command = f"docker -H unix://{sock} exec -it {web} sh -c 'tty; read x; echo got-$x'"
    # `script` gives the CLI a terminal: the exec is a TTY through the HTTP upgrade, both ways.
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"], input="hello\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/dev/pts/" in done.stdout and "got-hello" in done.stdout, done.stdout
    command = f"docker -H unix://{sock} run -it --rm --network none {IMAGE} sh -c 'tty; read x; echo ran-$x'"
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"], input="again\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "/dev/pts/" in done.stdout and "ran-again" in done.stdout, done.stdout
    _, out, _ = proxied.docker("ann", "exec", "-i", web, "cat", check=True)  # stdin closed: the exec ends
    assert out == ""


def test_build_run_and_copy_both_ways(proxied: Proxied, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo built > /built.txt\nVOLUME /data\n")
    (tmp_path / "blob").write_bytes(os.urandom(8 * MIB))  # a context worth streaming
    tag = f"{PLATFORM}-eli-img"
    _, out, _ = proxied.docker("eli", "build", "-t", tag, str(tmp_path), check=True, timeout=300)
    assert "Successfully tagged" in out
    code, _, err = proxied.docker("bob", "run", "--rm", "--network", "none", tag, "true")
    assert code != 0  # eli's image is not bob's: the CLI looks for it in a registry
    name = f"{PLATFORM}-eli-built"
    _, out, _ = proxied.docker("eli", "run", "--name", name, "--network", "none", tag, "cat", "/built.txt", check=True)
    assert out.strip() == "built"
    (tmp_path / "in.txt").write_text("to the container\n")
    proxied.docker("eli", "cp", str(tmp_path / "in.txt"), f"{name}:/tmp/in.txt", check=True)
    proxied.docker("eli", "cp", f"{name}:/tmp/in.txt", str(tmp_path / "out.txt"), check=True)
    assert (tmp_path / "out.txt").read_text() == "to the container\n"
    # The image's VOLUME made an anonymous volume: recorded as eli's from the container's mounts.
    mounts = docker.from_env().api.inspect_container(name)["Mounts"]
    anonymous = next(m["Name"] for m in mounts if m["Destination"] == "/data")
    assert DockerObjects(proxied.store).owners("volume")[anonymous] == "eli"
    assert proxied.docker("eli", "volume", "inspect", anonymous)[0] == 0
    assert proxied.docker("bob", "volume", "inspect", anonymous)[0] != 0
    huge = tmp_path / "huge"
    huge.mkdir()
    (huge / "Dockerfile").write_text(f"FROM {IMAGE}\n")
    (huge / "blob").write_bytes(os.urandom(25 * MIB))
    code, _, err = proxied.docker("eli", "build", str(huge), timeout=300)
    assert code != 0 and "build context" in err, err


def test_volumes_are_their_owners(proxied: Proxied) -> None:
    volume = f"{PLATFORM}-bob-data"
    proxied.docker("bob", "volume", "create", volume, check=True)
    assert volume in proxied.docker("bob", "volume", "ls", "-q", check=True)[1].split()
    assert volume not in proxied.docker("ann", "volume", "ls", "-q", check=True)[1].split()
    code, _, err = proxied.docker("ann", "volume", "rm", volume)
    assert code != 0 and "No such volume" in err
    code, _, err = proxied.docker("ann", "run", "--rm", "--network", "none", "-v", f"{volume}:/x", IMAGE, "true")
    assert code != 0 and "HostConfig.Binds:" in err
    code, _, err = proxied.docker("ann", "volume", "create", volume)
    assert code != 0 and "Name:" in err
    proxied.docker("bob", "volume", "rm", volume, check=True)
    kinds = [(u, e.kind, e.endpoint) for u, e in proxied.audit]
    assert ("bob", "create", "volume create") in kinds and ("bob", "remove", "volume remove") in kinds


def test_a_closed_socket_is_gone_with_its_connections(proxied: Proxied) -> None:
    asyncio.run(proxied.proxy.open("dora", QUOTA))
    sock = proxied.proxy.root / naming.docker_proxy_dir(Path(""), "dora")
    proxied.sockets["dora"] = sock / "docker.sock"
    assert proxied.docker("dora", "version", "--format", "{{.Server.APIVersion}}", check=True)[1].strip()
    assert oct(sock.stat().st_mode & 0o777) == "0o711"
    assert oct((sock / "docker.sock").stat().st_mode & 0o777) == "0o666"
    # One user's connections are bounded: beyond them, 429 (the lane stays free for others).
    idle = [socket.socket(socket.AF_UNIX) for _ in range(32)]
    for conn in idle:
        conn.connect(str(sock / "docker.sock"))
    time.sleep(0.5)
    code, _, err = proxied.docker("dora", "ps")
    assert code != 0 and "at most 32 connections" in err, err
    assert proxied.docker("ann", "ps")[0] == 0
    for conn in idle:
        conn.close()
    time.sleep(0.5)
    assert proxied.docker("dora", "ps")[0] == 0
    started = time.monotonic()
    follow = subprocess.Popen(
        ["docker", "-H", f"unix://{sock / 'docker.sock'}", "events"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(1)
    asyncio.run(proxied.proxy.close("dora"))
    assert follow.wait(timeout=20) is not None and time.monotonic() - started < 20  # its stream was dropped
    assert not (sock / "docker.sock").exists()
    assert "dora" not in proxied.proxy.open_users()


def ask_raw(sock: Path, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(sock))
        conn.sendall(request)
        conn.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = conn.recv(65536)
            if not data:
                break
            answer += data
        return answer


def test_a_form_body_or_a_body_that_is_not_json_is_refused(proxied: Proxied) -> None:
    # The engine merges a form body into the query values: the policy never saw it.
    form = b"privileged=1&Image=x"
    head = b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    answer = ask_raw(proxied.sockets["bob"], head + b"Content-Length: %d\r\n\r\n%s" % (len(form), form))
    assert answer.startswith(b"HTTP/1.1 400") and b"form bodies are not accepted" in answer, answer
    text = b"Image=x"
    head = b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
    answer = ask_raw(proxied.sockets["bob"], head + b"Content-Length: %d\r\n\r\n%s" % (len(text), text))
    assert answer.startswith(b"HTTP/1.1 400") and b"not JSON" in answer, answer
    smuggled = b"POST /v1.41/containers/create HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert ask_raw(proxied.sockets["bob"], smuggled).startswith(b"HTTP/1.1 400")


def test_a_build_reads_only_its_users_or_shared_images_and_takes_no_ones_tag(proxied: Proxied, tmp_path: Path) -> None:
    def context(name: str, dockerfile: str) -> str:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "Dockerfile").write_text(dockerfile)
        return str(folder)

    tag = f"{PLATFORM}-ann-private"
    proxied.docker("ann", "build", "-t", tag, context("ann", f"FROM {IMAGE}\nLABEL secret=ann\n"), check=True)
    ann_id = docker.from_env().images.get(tag).id
    for ref in (tag, ann_id):
        code, _, err = proxied.docker("bob", "build", context(ref.replace(":", "-"), f"FROM {ref}\nLABEL x=1\n"))
        assert code != 0 and f"No such image: {ref}" in err, err
    staged = f"ARG BASE={IMAGE}\nFROM $BASE AS one\nFROM one\nCOPY --from={tag} /etc/hostname /stolen\n"
    code, _, err = proxied.docker("bob", "build", context("staged", staged))
    assert code != 0 and f"No such image: {tag}" in err, err
    # A shared image (made on the engine, recorded by no one) whose ONBUILD trigger copies from ann's.
    shared = f"{PLATFORM}-shared-onbuild"
    onbuild = context("onbuild", f"FROM {IMAGE}\nONBUILD COPY --from={tag} /etc/hostname /stolen\n")
    docker.from_env().images.build(
        path=onbuild, tag=shared, labels={naming.LABEL_DOCKER_PLATFORM: PLATFORM}, rm=True, forcerm=True
    )
    code, _, err = proxied.docker("bob", "build", context("triggered", f"FROM {shared}\n"))
    assert code != 0 and f"No such image: {tag}" in err, err
    mine = context("bob", f"FROM {IMAGE}\nLABEL mine=bob\n")
    proxied.docker("bob", "build", "-t", f"{PLATFORM}-bob-own", mine, check=True)
    code, _, err = proxied.docker("bob", "build", "-t", tag, mine)
    assert code != 0 and "another user's image" in err, err
    assert docker.from_env().images.get(tag).id == ann_id  # the tag stayed on ann's image


def test_builds_at_once_are_bounded_and_spooled_beside_the_sockets(proxied: Proxied) -> None:
    # Two builds whose contexts are still arriving hold both of eli's build slots; the third
    # is refused at once instead of spooling a third context to disk.
    head = b"POST /v1.41/build?t=eli-slow HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
    head += b"Content-Length: %d\r\n\r\n"
    slow: list[socket.socket] = []
    try:
        for _ in range(2):
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(str(proxied.sockets["eli"]))
            conn.sendall(head % 10_000_000 + b"\0" * 4096)  # far from the whole context
            slow.append(conn)
        spool = proxied.proxy.root / ".spool"
        assert spool.is_dir() and spool.stat().st_mode & 0o777 == 0o700  # not /tmp, not the labs'
        deadline = time.monotonic() + 10  # both requests read and judged: their contexts are spooling
        while proxied.proxy.users["eli"].builds < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        third = ask_raw(proxied.sockets["eli"], head % 2 + b"\0\0")
        assert third.startswith(b"HTTP/1.1 429") and b"builds: 2 of at most 2 at once" in third, third
        assert ask_raw(proxied.sockets["ann"], head % 2 + b"\0\0").split(b" ")[1] != b"429"  # per user
    finally:
        for conn in slow:
            conn.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the slots come back once the clients are gone
        answer = ask_raw(proxied.sockets["eli"], head % 2 + b"\0\0")
        if not answer.startswith(b"HTTP/1.1 429"):
            break
        time.sleep(0.2)
    assert not answer.startswith(b"HTTP/1.1 429"), answer
