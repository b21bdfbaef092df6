"""The Docker request policy (issue 25): what a user with `limited` access may ask of the
engine, decided from the request, their quota and who owns what (docs/docker-access.md)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from reconciler import docker_requests as dr
from reconciler.docker_requests import PLATFORM, SHARED, Allow, Quota, Refuse, Request, Usage, View
from vocabulary import naming

ROOT = Path(__file__).resolve().parents[2]
ANN, BOB = "ann", "bob"
MINE = "a" * 64
THEIRS = "b" * 64
LAB = "c" * 64
VIEW = View(
    platform="p",
    containers={MINE: ANN, "web": ANN, THEIRS: BOB, "db": BOB, LAB: PLATFORM, "jupyter-ann": PLATFORM},
    volumes={"data": ANN, "bobs": BOB, "jupyterhub-user-ann": PLATFORM},
    networks={"mine": ANN, "theirs": BOB, "bridge": PLATFORM},
    images={"app:latest": ANN, "postgres:16": SHARED, "bobapp:latest": BOB, "jupyterhub-ds/lab:ds": PLATFORM},
    execs={"e1": ANN, "e2": BOB},
    reserved_images=frozenset({"jupyterhub-ds/lab"}),
)
GIB = 2**30
QUOTA = Quota(max_containers=3, memory=2 * GIB, cpus=2, total_memory=4 * GIB, total_cpus=4, default_memory=GIB)
OPEN = Quota()


def cli_run_body(**host: Any) -> dict[str, Any]:
    """What docker CLI 24 (API 1.43) sends for `docker run -d --name x -v data:/data alpine`."""
    body: dict[str, Any] = {
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
        "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
        "Cmd": None, "Image": "alpine", "Volumes": {}, "WorkingDir": "", "Entrypoint": None,
        "OnBuild": None, "Labels": {},
        "HostConfig": {
            "Binds": ["data:/data"], "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
            "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None,
            "CapDrop": None, "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
            "GroupAdd": None, "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
            "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None,
            "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "", "CpuShares": 0, "Memory": 0,
            "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "CpuPeriod": 0,
            "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
            "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
            "MemorySwap": 0, "MemorySwappiness": -1, "OomKillDisable": False, "PidsLimit": 0, "Ulimits": None,
            "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "MaskedPaths": None, "ReadonlyPaths": None,
        },
        "NetworkingConfig": {"EndpointsConfig": {}},
    }  # fmt: skip
    body["HostConfig"].update(host)
    return body


def ask(method: str, url: str, body: Any = None, quota: Quota = QUOTA, view: View = VIEW, **kw: Any) -> Any:
    path, _, query = url.partition("?")
    return dr.decide(Request(method, path, parse_qs(query, keep_blank_values=True), body, **kw), ANN, quota, view)


def refused(decision: Any, status: int, field: str | None = None) -> str:
    assert isinstance(decision, Refuse), decision
    assert decision.status == status, decision
    if field is not None:
        assert decision.field == field and decision.message.startswith(f"{field}: "), decision
    return decision.message


def create(quota: Quota = QUOTA, view: View = VIEW, **host: Any) -> Any:
    return ask("POST", "/v1.43/containers/create?name=x", cli_run_body(**host), quota, view)


# -- the real CLI's requests ------------------------------------------------------------


def test_docker_run_with_a_named_volume_is_allowed_labelled_and_limited() -> None:
    decision = create()
    assert isinstance(decision, Allow) and decision.audit
    labels = decision.body["Labels"]
    assert labels[naming.LABEL_DOCKER_OWNER] == ANN and labels[naming.LABEL_DOCKER_PLATFORM] == "p"
    assert decision.body["HostConfig"]["Memory"] == GIB  # the default
    assert decision.body["HostConfig"]["NanoCpus"] == 2 * 10**9  # no default: the per-container bound
    assert decision.create_volumes == ()  # `data` is ann's already
    new = ask("POST", "/containers/create", cli_run_body(Binds=["fresh:/data", "/anonymous"]))
    assert isinstance(new, Allow) and new.create_volumes == ("fresh",)


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("HEAD", "/_ping", None),
        ("GET", "/v1.43/version", None),
        ("GET", "/v1.43/info", None),
        ("GET", "/v1.43/containers/json", None),  # docker ps
        ("GET", "/v1.43/containers/web/logs?follow=1&stderr=1&stdout=1&tail=all", None),  # docker logs -f web
        ("POST", "/v1.43/containers/web/attach?stderr=1&stdin=1&stdout=1&stream=1", None),
        ("POST", "/v1.43/containers/web/wait?condition=next-exit", None),
        ("POST", "/v1.43/containers/web/start", None),
        ("POST", "/v1.43/containers/web/resize?h=24&w=80", None),
        ("POST", f"/v1.43/containers/{MINE[:12]}/stop", None),
        ("DELETE", "/v1.43/containers/web?force=1&v=1", None),
        ("HEAD", "/v1.43/containers/web/archive?path=%2Fdata", None),  # docker cp
        ("PUT", "/v1.43/containers/web/archive?noOverwriteDirNonDir=true&path=%2Fdata", None),
        ("GET", "/v1.43/volumes/data", None),
        ("POST", "/v1.43/volumes/create", {"Driver": "local", "DriverOpts": {}, "Labels": {}, "Name": "new"}),
        ("POST", "/v1.43/networks/create", {"Name": "net", "CheckDuplicate": True, "Driver": "bridge", "Labels": {}}),
        ("POST", "/v1.43/networks/mine/connect", {"Container": "web", "EndpointConfig": {}}),
        ("GET", "/v1.43/images/postgres:16/json", None),
        ("GET", "/v1.43/images/docker.io/library/postgres:16/json", None),
        ("DELETE", "/v1.43/images/app", None),
        ("POST", "/v1.43/images/create?fromImage=postgres&tag=16", None),  # docker pull (and run, on a 404)
        ("POST", "/v1.43/exec/e1/start", {"Detach": False, "Tty": True, "ConsoleSize": [24, 80]}),
    ],
)
def test_what_the_cli_sends_for_ones_own_objects_is_allowed(method: str, url: str, body: Any) -> None:
    assert isinstance(ask(method, url, body), Allow)


def test_docker_exec_it_is_remembered_and_privileged_exec_refused() -> None:
    body = {
        "User": "", "Privileged": False, "Tty": True, "ConsoleSize": [24, 80], "AttachStdin": True,
        "AttachStderr": True, "AttachStdout": True, "Detach": False, "DetachKeys": "", "Env": None,
        "WorkingDir": "", "Cmd": ["bash"],
    }  # fmt: skip
    decision = ask("POST", "/v1.43/containers/web/exec", body)
    assert isinstance(decision, Allow) and decision.remember == "exec"
    refused(ask("POST", "/v1.43/containers/web/exec", {**body, "Privileged": True}), 403, "Privileged")
    refused(ask("POST", "/v1.43/containers/db/exec", body), 404)
    refused(ask("POST", "/v1.43/exec/e2/start", {"Detach": False, "Tty": True}), 404)


BUILD = (
    "/v1.43/build?buildargs=%7B%7D&cachefrom=%5B%5D&cgroupparent=&cpuperiod=0&cpuquota=0&cpusetcpus="
    "&cpusetmems=&cpushares=0&dockerfile=Dockerfile&labels=%7B%7D&memory=0&memswap=0&networkmode=default"
    "&rm=1&shmsize=0&t=app&target=&ulimits=null&version=1"
)  # `DOCKER_BUILDKIT=0 docker build -t app .`


def test_docker_build_is_labelled_limited_and_bounded() -> None:
    quota = Quota(memory=2 * GIB, build_context=100 * 2**20)
    decision = ask("POST", BUILD, body_size=2**20, quota=quota)
    assert isinstance(decision, Allow) and decision.max_body == 100 * 2**20
    labels = json.loads(decision.query["labels"][0])
    assert labels == {naming.LABEL_DOCKER_OWNER: ANN, naming.LABEL_DOCKER_PLATFORM: "p"}
    assert decision.query["memory"] == [str(2 * GIB)]
    message = refused(ask("POST", BUILD, body_size=200 * 2**20, quota=quota), 409, "build context")
    assert "200 MiB (209715200) > at most 100 MiB" in message
    refused(ask("POST", BUILD.replace("version=1", "version=2")), 403, "version")
    refused(ask("POST", "/v1.43/session"), 403, "version")
    refused(ask("POST", BUILD.replace("networkmode=default", "networkmode=host")), 403, "networkmode")
    refused(ask("POST", BUILD.replace("cgroupparent=", "cgroupparent=%2F")), 403, "cgroupparent")
    refused(ask("POST", BUILD + "&remote=https%3A%2F%2Fexample.org%2Fx.git"), 403, "remote")
    refused(ask("POST", BUILD.replace("t=app", "t=jupyterhub-ds%2Flab%3Ads")), 403, "t")
    over = BUILD.replace("labels=%7B%7D", "labels=" + json.dumps({naming.LABEL_DOCKER_OWNER: BOB, "x": "1"}))
    labels = json.loads(ask("POST", over).query["labels"][0])
    assert labels[naming.LABEL_DOCKER_OWNER] == ANN and labels["x"] == "1"


def test_docker_run_v_root_is_refused() -> None:
    message = refused(create(Binds=["/:/host"]), 403, "HostConfig.Binds")
    assert "the host path /" in message


# -- no way out -------------------------------------------------------------------------

NO_WAY_OUT = {
    "privileged": ({"Privileged": True}, "HostConfig.Privileged"),
    "cap-add": ({"CapAdd": ["SYS_ADMIN"]}, "HostConfig.CapAdd"),
    "device": ({"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]}, "HostConfig.Devices"),
    "device rule": ({"DeviceCgroupRules": ["b *:* rmw"]}, "HostConfig.DeviceCgroupRules"),
    "gpus": ({"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]}, "HostConfig.DeviceRequests"),
    "seccomp": ({"SecurityOpt": ["seccomp=unconfined"]}, "HostConfig.SecurityOpt"),
    "apparmor": ({"SecurityOpt": ["apparmor:unconfined"]}, "HostConfig.SecurityOpt"),
    "systempaths": ({"MaskedPaths": [], "ReadonlyPaths": []}, "HostConfig.MaskedPaths"),
    "pid host": ({"PidMode": "host"}, "HostConfig.PidMode"),
    "ipc host": ({"IpcMode": "host"}, "HostConfig.IpcMode"),
    "uts host": ({"UTSMode": "host"}, "HostConfig.UTSMode"),
    "network host": ({"NetworkMode": "host"}, "HostConfig.NetworkMode"),
    "join another's pid": ({"PidMode": "container:db"}, "HostConfig.PidMode"),
    "join a lab's network": ({"NetworkMode": f"container:{LAB}"}, "HostConfig.NetworkMode"),
    "userns host": ({"UsernsMode": "host"}, "HostConfig.UsernsMode"),
    "sysctls": ({"Sysctls": {"net.ipv4.ip_forward": "1"}}, "HostConfig.Sysctls"),
    "cgroup parent": ({"CgroupParent": "/"}, "HostConfig.CgroupParent"),
    "cgroupns host": ({"CgroupnsMode": "host"}, "HostConfig.CgroupnsMode"),
    "runtime": ({"Runtime": "sysbox-runc"}, "HostConfig.Runtime"),
    "bind the socket": ({"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]}, "HostConfig.Binds"),
    "bind a home": ({"Binds": ["/home/bob:/bob:ro"]}, "HostConfig.Binds"),
    "mount bind": ({"Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/etc"}]}, "HostConfig.Mounts"),
    "mount driver opts": (
        {
            "Mounts": [
                {
                    "Type": "volume",
                    "Source": "sneaky",
                    "Target": "/x",
                    "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"o": "bind", "device": "/"}}},
                }
            ]
        },
        "HostConfig.Mounts",
    ),
    "volume driver": ({"VolumeDriver": "rexray"}, "HostConfig.VolumeDriver"),
    "another user's volume": ({"Binds": ["bobs:/data"]}, "HostConfig.Binds"),
    "the platform's volume": ({"Binds": ["jupyterhub-user-ann:/home"]}, "HostConfig.Binds"),
    "another user's volume, mounted": (
        {"Mounts": [{"Type": "volume", "Source": "bobs", "Target": "/x"}]},
        "HostConfig.Mounts",
    ),
    "volumes from another": ({"VolumesFrom": ["db:ro"]}, "HostConfig.VolumesFrom"),
    "all interfaces": ({"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}}, "HostConfig.PortBindings"),
    "another address": (
        {"PortBindings": {"80/tcp": [{"HostIp": "10.0.0.5", "HostPort": "80"}]}},
        "HostConfig.PortBindings",
    ),
    "publish all": ({"PublishAllPorts": True}, "HostConfig.PublishAllPorts"),
    "negative oom score": ({"OomScoreAdj": -1000}, "HostConfig.OomScoreAdj"),
    "log driver": ({"LogConfig": {"Type": "syslog", "Config": {}}}, "HostConfig.LogConfig.Type"),
}


@pytest.mark.parametrize("host, field", NO_WAY_OUT.values(), ids=NO_WAY_OUT.keys())
def test_each_way_out_is_refused_naming_its_field(host: dict[str, Any], field: str) -> None:
    refused(create(**host), 403, field)


def test_joining_ones_own_container_and_publishing_on_loopback_are_allowed() -> None:
    assert isinstance(create(NetworkMode="container:web", PidMode=f"container:{MINE[:12]}"), Allow)
    assert isinstance(create(PortBindings={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}), Allow)
    anywhere = Quota(publish_addresses=frozenset({"0.0.0.0", "127.0.0.1"}))
    assert isinstance(create(anywhere, PublishAllPorts=True), Allow)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"Name": "v", "Driver": "local", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}}, "DriverOpts"),
        ({"Name": "v", "DriverOpts": {"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}}, "DriverOpts"),
        ({"Name": "v", "Driver": "rexray"}, "Driver"),
        ({"Name": "bobs"}, "Name"),
    ],
)
def test_volume_driver_options_binding_host_paths_are_refused(body: dict[str, Any], field: str) -> None:
    status = 409 if field == "Name" else 403
    message = refused(ask("POST", "/v1.43/volumes/create", body), status, field)
    if body.get("DriverOpts", {}).get("o") == "bind":
        assert "binding the host path /" in message
    tmpfs = {"Name": "t", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=100m"}}
    assert isinstance(ask("POST", "/v1.43/volumes/create", tmpfs), Allow)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"Name": "n", "Driver": "macvlan", "Options": {"parent": "eth0"}}, "Driver"),
        ({"Name": "n", "Options": {"com.docker.network.bridge.name": "docker0"}}, "Options"),
        ({"Name": "n", "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.0.0.0/8"}]}}, "IPAM"),
    ],
)
def test_networks_reaching_the_hosts_are_refused(body: dict[str, Any], field: str) -> None:
    refused(ask("POST", "/v1.43/networks/create", body), 403, field)


# -- ownership --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("GET", "/v1.43/containers/db/json", None),
        ("POST", f"/v1.43/containers/{THEIRS[:12]}/stop", None),
        ("DELETE", "/v1.43/containers/jupyter-ann", None),  # a lab: the platform's
        ("GET", f"/v1.43/containers/{LAB}/logs?follow=1", None),
        ("GET", "/v1.43/containers/db/archive?path=%2F", None),
        ("GET", "/v1.43/containers/nothing/json", None),
        ("GET", "/v1.43/volumes/bobs", None),
        ("DELETE", "/v1.43/volumes/jupyterhub-user-ann", None),
        ("GET", "/v1.43/networks/theirs", None),
        ("GET", "/v1.43/networks/bridge", None),
        ("POST", "/v1.43/networks/theirs/connect", {"Container": "web"}),
        ("POST", "/v1.43/networks/mine/connect", {"Container": "db"}),
        ("GET", "/v1.43/images/bobapp/json", None),
        ("DELETE", "/v1.43/images/jupyterhub-ds/lab:ds", None),
        ("POST", "/v1.43/containers/create", cli_run_body(NetworkMode="theirs")),
        ("POST", "/v1.43/containers/create", {**cli_run_body(), "Image": "bobapp"}),
        ("POST", "/v1.43/containers/create", {**cli_run_body(), "Image": "jupyterhub-ds/lab:ds"}),
        ("GET", "/v1.43/exec/e2/json", None),
    ],
)
def test_another_owners_object_is_as_if_absent(method: str, url: str, body: Any) -> None:
    message = refused(ask(method, url, body), 404)
    assert message.startswith("No such ")


def test_an_ambiguous_short_id_is_nobodys() -> None:
    view = View("p", containers={"abcd" + "0" * 60: ANN, "abcd" + "1" * 60: BOB})
    refused(ask("POST", "/containers/abcd/stop", view=view), 404)
    assert isinstance(ask("POST", "/containers/abcd0/stop", view=view), Allow)


@pytest.mark.parametrize(
    "url",
    [
        "/v1.43/containers/json?all=1",
        "/volumes",
        "/networks",
        "/images/json",
        "/events?since=1",
        "/v1.41/containers/prune",
    ],
)
def test_lists_and_events_are_narrowed_to_ones_own(url: str) -> None:
    method = "POST" if url.endswith("prune") else "GET"
    decision = ask(method, url)
    assert isinstance(decision, Allow)
    filters = json.loads(decision.query["filters"][0])
    assert filters["label"] == [f"{naming.LABEL_DOCKER_PLATFORM}=p", f"{naming.LABEL_DOCKER_OWNER}={ANN}"]


def test_the_requests_own_filters_stay_and_ours_are_added() -> None:
    for given in ({"label": ["app=x"], "status": ["running"]}, {"label": {"app=x": True}, "status": ["running"]}):
        request = Request("GET", "/containers/json", {"filters": [json.dumps(given)]})
        decision = dr.decide(request, ANN, QUOTA, VIEW)
        filters = json.loads(decision.query["filters"][0])
        assert filters["status"] == ["running"] and filters["label"][0] == "app=x" and len(filters["label"]) == 3
    refused(ask("GET", "/containers/json?filters=%7Bnot"), 400, "filters")


@pytest.mark.parametrize("endpoint", ["/containers/create", "/volumes/create", "/networks/create"])
def test_the_owner_label_overrides_what_the_request_carried(endpoint: str) -> None:
    claimed = {naming.LABEL_DOCKER_OWNER: BOB, naming.LABEL_USER: BOB, naming.LABEL_PLATFORM: "p", "mine": "yes"}
    body = (
        {**cli_run_body(), "Labels": claimed} if endpoint == "/containers/create" else {"Name": "z", "Labels": claimed}
    )
    given = copy.deepcopy(body)
    decision = ask("POST", endpoint, body)
    assert isinstance(decision, Allow)
    assert decision.body["Labels"] == {"mine": "yes", **dr.owner_labels("p", ANN)}
    assert body == given  # the request's own body is not changed


@pytest.mark.parametrize(
    "method, url",
    [
        ("POST", "/v1.43/containers/web/update"),
        ("POST", "/v1.43/commit?container=web"),
        ("GET", "/v1.43/swarm"),
        ("POST", "/v1.43/plugins/pull"),
        ("POST", "/v1.43/images/load"),
        ("POST", "/v1.43/images/app/tag?repo=jupyterhub-ds/lab&tag=ds"),
    ],
)
def test_unknown_endpoints_are_refused(method: str, url: str) -> None:
    refused(ask(method, url), 403, "endpoint")


def test_the_platforms_images_are_never_pulled_over_and_shared_ones_never_removed() -> None:
    refused(ask("POST", "/images/create?fromImage=jupyterhub-ds%2Flab&tag=ds"), 403, "fromImage")
    refused(ask("POST", "/images/create?fromSrc=-&repo=x"), 403, "fromSrc")
    refused(ask("DELETE", "/images/postgres:16"), 403, "image")
    refused(ask("POST", "/containers/web/start", {"HostConfig": {"Privileged": True}}), 403, "HostConfig at start")


# -- quotas -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "usage, host, field, numbers",
    [
        (Usage(containers=3), {}, "containers", "3 of at most 3 exist"),
        (
            Usage(),
            {"Memory": 3 * GIB},
            "HostConfig.Memory",
            "3 GiB (3221225472) asked, at most 2 GiB (2147483648) each",
        ),
        (Usage(containers=2, memory=3 * GIB), {"Memory": 2 * GIB}, "HostConfig.Memory", "3 GiB in use + 2 GiB > 4 GiB"),
        (Usage(), {"NanoCpus": 3 * 10**9}, "HostConfig.NanoCpus", "3 CPUs asked, at most 2 each"),
        (Usage(), {"CpuQuota": 300_000, "CpuPeriod": 100_000}, "HostConfig.NanoCpus", "3 CPUs asked"),
        (Usage(cpus=3.5), {}, "HostConfig.NanoCpus", "3.5 CPUs in use + 2 > 4 in total"),
    ],
)
def test_over_quota_answers_409_with_the_numbers(usage: Usage, host: dict[str, Any], field: str, numbers: str) -> None:
    view = dataclasses.replace(VIEW, usage=usage)
    assert numbers in refused(create(view=view, **host), 409, field)


def test_a_total_without_a_default_needs_a_limit() -> None:
    quota = Quota(total_memory=4 * GIB)
    assert "no limit" in refused(create(quota), 409, "HostConfig.Memory")
    allowed = create(quota, Memory=GIB)
    assert isinstance(allowed, Allow) and allowed.body["HostConfig"]["Memory"] == GIB


def test_no_quota_no_defaults() -> None:
    decision = create(OPEN)
    assert isinstance(decision, Allow)
    assert decision.body["HostConfig"]["Memory"] == 0 and decision.body["HostConfig"]["NanoCpus"] == 0


# -- the page ---------------------------------------------------------------------------


def test_the_page_shows_the_policy_as_the_module_has_it() -> None:
    page = (ROOT / "docs" / "docker-access.md").read_text()
    assert dr.markdown() in page, "docs/docker-access.md: paste reconciler.docker_requests.markdown()"


def test_every_shared_rule_a_finding_names_is_a_rule_of_the_policy() -> None:
    from reconciler.container_rules import escalations, host_config_facts

    host = {k: v for case, _ in NO_WAY_OUT.values() for k, v in case.items()}  # every way out at once
    fields = {f.field for f in escalations(host_config_facts(host), ())}
    assert len(fields) >= 8 and fields <= {r.field for r in dr.RULES}


# The engine's decoders match JSON names without regard to case and read a parameter's first
# value: a request shaped to slip past the rules is refused before they run (review findings).
CREATE, PG = "/containers/create", "postgres:16"


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "field"),
    [
        ("POST", CREATE, {}, {"Image": PG, "HostConfig": {"privileged": True}}, "Privileged"),
        ("POST", CREATE, {}, {"Image": PG, "hostConfig": {"Privileged": True}}, "HostConfig"),
        ("POST", CREATE, {}, {"Image": PG, "HostConfig": {"binds": ["/:/h"]}}, "Binds"),
        (
            "POST",
            "/containers/create",
            {},
            {"Image": "postgres:16", "HostConfig": {"networkmode": "host"}},
            "NetworkMode",
        ),
        (
            "POST",
            "/containers/create",
            {},
            {"Image": "postgres:16", "labels": {naming.LABEL_DOCKER_OWNER: "bob"}},
            "Labels",
        ),
        ("POST", f"/containers/{MINE}/exec", {}, {"Cmd": ["sh"], "privileged": True}, "Privileged"),
        ("POST", "/build", {"networkmode": ["host", "bridge"]}, None, "networkmode"),
        ("POST", "/build", {"remote": ["http://x", ""]}, None, "remote"),
        ("POST", "/images/create", {"fromImage": ["jupyterhub-ds/lab", "alpine"]}, None, "fromImage"),
    ],
)
def test_a_request_shaped_to_slip_past_the_rules_is_refused(method, path, query, body, field) -> None:
    decision = dr.decide(Request(method, path, query, body), ANN, QUOTA, VIEW)
    assert isinstance(decision, Refuse), decision
    assert decision.status == 400 and decision.field == field, decision


def test_user_data_keyed_like_a_field_is_not_a_field() -> None:
    body = {"Image": PG, "Labels": {"image": "x", "privileged": "no"}}
    assert isinstance(dr.decide(Request("POST", CREATE, {}, body), ANN, QUOTA, VIEW), Allow)


# -- the review's gaps, closed with the proxy ---------------------------------------------


def test_swap_is_tied_to_the_memory_limit() -> None:
    allowed = create()
    assert isinstance(allowed, Allow) and allowed.body["HostConfig"]["MemorySwap"] == GIB  # no swap beyond it
    refused(create(Memory=GIB, MemorySwap=-1), 409, "HostConfig.MemorySwap")  # unlimited swap
    refused(create(Memory=GIB, MemorySwap=2 * GIB), 409, "HostConfig.MemorySwap")


def test_a_container_gets_the_default_process_limit_and_no_more() -> None:
    allowed = create()
    assert isinstance(allowed, Allow) and allowed.body["HostConfig"]["PidsLimit"] == 1024
    refused(create(PidsLimit=100_000), 409, "HostConfig.PidsLimit")
    unlimited = create(dataclasses.replace(QUOTA, pids=None), PidsLimit=-1)
    assert isinstance(unlimited, Allow) and unlimited.body["HostConfig"]["PidsLimit"] == -1


@pytest.mark.parametrize(
    "host",
    [{"Memory": "1g"}, {"Binds": "data:/data"}, {"PortBindings": ["80/tcp"]}, {"OomScoreAdj": "-5"}],
)
def test_a_malformed_value_is_a_400_not_an_exception(host: dict[str, Any]) -> None:
    refused(create(**host), 400, "value")


def test_a_build_runs_within_the_cpus_of_the_quota() -> None:
    allowed = ask("POST", "/v1.41/build?t=app", body_size=10)
    assert isinstance(allowed, Allow)
    assert allowed.query["cpuquota"] == ["200000"] and allowed.query["cpuperiod"] == ["100000"]
    assert allowed.query["memswap"] == allowed.query["memory"]
    refused(ask("POST", "/v1.41/build?t=app&cpuquota=400000&cpuperiod=100000", body_size=10), 409, "cpuquota")


def test_inspecting_a_plugin_answers_as_if_there_were_none() -> None:
    assert refused(ask("GET", "/v1.41/plugins/web/json"), 404) == "No such plugin: web"
