"""GroupPolicy on real containers, drift on running servers, and a RolloutRestart.

One platform of its own and one timeline (the tests run in order, each building on the
last): two policies, `gp-ml` (priority 10: 512M, 1.5 CPUs, MLflow's URL, the datasets
volume read-only, images gp-test then minimal) and `gp-bio` (priority 5: 768M, 0.5 CPUs,
image gp-test only). `gp-ann` is in gp-ml, `gp-cat` in both, `gp-dan` in gp-bio, `gp-bob`
in neither. `jupyterhub-ds/lab:gp-test` is a tag of the minimal image made for this module
(later moved to a rebuilt image, then removed).

1. docker inspect shows each member's limits, environment and mount; the non-member has none;
2. gp-cat gets the combination (largest limits, union of mounts, ml's TEAM by priority);
3. an image outside a user's allowed list is refused at spawn, with the reason; the spawn
   form offers a member's images and starts the one picked (`gp-fay`, then stopped);
4. an edit of gp-bio marks exactly gp-cat and gp-dan Drifted (`hubctl get servers -o json`,
   an event, the metric, the Servers page);
5. moving the gp-test tag to a rebuilt image marks its three servers Drifted;
6. a RolloutRestart (maxUnavailable 1) over those three never has two down at once, warns
   each lab first, puts the one in use (gp-ann) last, and ends with none drifted;
7. the Docker socket as a policy field: refused at apply for an unprotected group, with the
   reason and the line; a member of docker-privileged (`gp-pia`) gets it through the
   built-in policy `docker-privileged`, and `hubctl get effective` says so;
8. the operators' page of one user (`/hub/users/NAME/policy`, linked from the Servers and
   Privileged pages; 403 for a user without the read scope), then the Servers page's
   rollout button, clicked in Chromium (XSRF through the page's own call), restarts the
   drifted servers until none is; `POST /hub/api/rollouts` without the scope is a 403.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import docker
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.harness import TEST_PLATFORM, Hub, lab_queue, server_token, wait_for
from tests.helpers import apply, apply_manifests, manifest, resource, status
from tests.integration.browser import chromium, shot, sign_in, wait

DATASETS = f"{TEST_PLATFORM}-policy-datasets"
TEST_TAG = "jupyterhub-ds/lab:gp-test"
MINIMAL = "jupyterhub-ds/lab:minimal"
GROUPS = {"gp-ann": ["gp-ml"], "gp-cat": ["gp-ml", "gp-bio"], "gp-dan": ["gp-bio"], "gp-bob": []}
MiB = 1024**2


def policy(name: str, spec: dict) -> str:
    return manifest("GroupPolicy", name, spec)


ML = {
    "groups": ["gp-ml"],
    "priority": 10,
    "resources": {"memory": "512M", "cpus": 1.5},
    "environment": {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "TEAM": "ml"},
    "images": [TEST_TAG, MINIMAL],
    "volumes": {DATASETS: {"mount": "/mnt/datasets", "readOnly": True}},
}
BIO = {
    "groups": ["gp-bio"],
    "priority": 5,
    "resources": {"memory": "768M", "cpus": 0.5},
    "environment": {"TEAM": "bio", "GENOMES": "/mnt/genomes"},
    "images": [TEST_TAG],
}


def attrs(engine: docker.DockerClient, hub: Hub, user: str) -> dict:
    return engine.api.inspect_container(hub.container_name(user))


def env_of(a: dict) -> dict[str, str]:
    return dict(e.split("=", 1) for e in a["Config"]["Env"])


def mounts(a: dict) -> dict[str, dict]:
    return {m["Destination"]: m for m in a["Mounts"]}


def servers(hub: Hub) -> dict[str, dict]:
    result = hub.hubctl("get", "servers", "-o", "json")
    assert result.returncode == 0, result.stderr
    return {s["user"]: s for s in json.loads(result.stdout)["servers"]}


def drifted(hub: Hub) -> set[str]:
    return {u for u, s in servers(hub).items() if s["drifted"]}


@pytest.fixture(scope="module")
def gp(engine: docker.DockerClient, own_platforms) -> Iterator[Hub]:
    env = {
        "JUPYTERHUB_LAST_ACTIVITY_INTERVAL": "2",
        "JUPYTERHUB_ACTIVITY_RESOLUTION": "1",
        "BROADCAST_DEADLINE": "6",
        "BROADCAST_ATTEMPT_TIMEOUT": "2",
    }
    hub = own_platforms.platform("policy", env)
    engine.images.get(MINIMAL).tag(TEST_TAG)
    engine.volumes.create(DATASETS)
    engine.containers.run(
        MINIMAL, ["sh", "-c", "echo iris > /d/readme"], volumes={DATASETS: {"bind": "/d"}}, user="root",
        network_mode="none", remove=True,
    )  # fmt: skip
    try:
        apply_manifests(hub, policy("gp-ml", ML), policy("gp-bio", BIO))
        for user, groups in GROUPS.items():
            hub.create_user(user)
            for group in groups:
                assert hub.api("POST", f"groups/{group}").status_code in (201, 409)
                assert hub.api("POST", f"groups/{group}/users", json={"users": [user]}).status_code == 200
        for user in GROUPS:
            assert hub.api("POST", f"users/{user}/server").status_code in (201, 202)
        for user in GROUPS:
            hub.wait_ready(user)
        yield hub
    finally:
        # The platform may live on (shared): its servers go first, they mount the datasets.
        for user in hub.api("GET", "users").json():
            if user.get("servers"):
                hub.stop_server(user["name"])
        with contextlib.suppress(docker.errors.NotFound):
            engine.images.remove(TEST_TAG)
        with contextlib.suppress(docker.errors.NotFound):
            engine.volumes.get(DATASETS).remove(force=True)


def test_member_gets_the_policy_and_non_member_not(gp: Hub, engine: docker.DockerClient) -> None:
    ann, bob = attrs(engine, gp, "gp-ann"), attrs(engine, gp, "gp-bob")
    assert ann["HostConfig"]["Memory"] == 512 * MiB
    assert ann["HostConfig"]["NanoCpus"] == 1_500_000_000
    assert env_of(ann)["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    dataset = mounts(ann)["/mnt/datasets"]
    assert (dataset["Name"], dataset["RW"]) == (DATASETS, False)
    assert gp.exec(engine, "gp-ann", "cat /mnt/datasets/readme").strip() == "iris"
    assert ann["Config"]["Image"] == TEST_TAG  # the policy's default image
    assert ann["Config"]["Labels"]["io.jupyterhub-ds.policy-hash"]

    assert bob["HostConfig"]["Memory"] == 0 and bob["HostConfig"]["NanoCpus"] == 0
    assert "MLFLOW_TRACKING_URI" not in env_of(bob) and "TEAM" not in env_of(bob)
    assert "/mnt/datasets" not in mounts(bob)
    assert bob["Config"]["Image"] == MINIMAL  # the platform's default, as without policies


def test_two_groups_combine(gp: Hub, engine: docker.DockerClient) -> None:
    cat = attrs(engine, gp, "gp-cat")
    assert cat["HostConfig"]["Memory"] == 768 * MiB  # the largest (gp-bio)
    assert cat["HostConfig"]["NanoCpus"] == 1_500_000_000  # the largest (gp-ml)
    env = env_of(cat)
    assert (env["TEAM"], env["GENOMES"]) == ("ml", "/mnt/genomes")  # gp-ml has the higher priority
    assert "/mnt/datasets" in mounts(cat)  # the union
    shown = gp.hubctl("get", "effective", "gp-cat", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    effective = json.loads(shown.stdout)
    assert effective["effective"]["policies"] == ["gp-ml", "gp-bio"]
    assert effective["effective"]["memory"] == 768 * MiB
    assert effective["allowedImages"] == [TEST_TAG, MINIMAL]
    assert effective["hash"] == cat["Config"]["Labels"]["io.jupyterhub-ds.policy-hash"]


def test_gpus_refused_with_a_condition_when_the_engine_has_none(gp: Hub) -> None:
    apply_manifests(gp, policy("gp-gpu", {"groups": ["gp-gpu"], "gpus": {"count": 1}}))

    conditions = lambda: status(gp, "GroupPolicy", "gp-gpu").get("conditions", [])  # noqa: E731
    ready = wait_for(lambda: next((c for c in conditions() if c["type"] == "Ready"), None), 20, "the Ready condition")
    assert (ready["status"], ready["reason"]) == ("False", "NoGPU"), ready
    assert gp.api("DELETE", "resources/grouppolicy/gp-gpu").status_code in (200, 204)


def test_image_outside_the_allowed_list_is_refused(gp: Hub) -> None:
    gp.create_user("gp-eve")  # no group: only the platform's image
    r = gp.api("POST", "users/gp-eve/server", json={"image": TEST_TAG})
    expected = f"The image {TEST_TAG} is not allowed for you. Allowed: {MINIMAL}."
    assert r.status_code >= 400, (r.status_code, r.text)  # it fails within the hub's wait
    assert not gp.api("GET", "users/gp-eve").json()["servers"]
    wait_for(lambda: expected in gp.log_path.read_text(errors="replace"), 10, "the refusal in the hub's log")
    # A refusal (SpawnException on JupyterHub 6, an HTTP 400 on 5.x), not an unhandled error.
    assert "Unhandled error starting gp-eve" not in gp.log_path.read_text(errors="replace")
    # A member may pick among its images: gp-ann's second image is allowed (checked, not started).
    r = gp.api("GET", "users/gp-ann/effective-policy")
    assert r.json()["allowedImages"] == [TEST_TAG, MINIMAL]


def test_spawn_form_offers_the_allowed_images(gp: Hub, engine: docker.DockerClient) -> None:
    gp.create_user("gp-fay")
    assert gp.api("POST", "groups/gp-ml/users", json={"users": ["gp-fay"]}).status_code == 200
    admin, error = gp.login("admin")
    assert admin is not None, error
    page = admin.get(f"{gp.url}hub/spawn/gp-fay", timeout=30).text
    assert f'<option value="{TEST_TAG}" selected>' in page and f'<option value="{MINIMAL}">' in page
    r = gp._form(admin, "spawn/gp-fay", {"image": MINIMAL})  # the second image, picked in the form
    assert r.status_code in (200, 302), r.status_code
    gp.wait_ready("gp-fay")
    assert attrs(engine, gp, "gp-fay")["Config"]["Image"] == MINIMAL
    gp.stop_server("gp-fay")


def test_policy_edit_marks_exactly_the_affected(gp: Hub) -> None:
    assert drifted(gp) == set()
    apply_manifests(gp, policy("gp-ml", ML), policy("gp-bio", {**BIO, "resources": {"memory": "1G", "cpus": 0.5}}))
    t0 = time.monotonic()
    wait_for(lambda: drifted(gp) == {"gp-cat", "gp-dan"}, 20, "gp-cat and gp-dan drifted, nobody else")
    seconds = time.monotonic() - t0
    rows = servers(gp)
    assert f"memory: {768 * MiB} -> {1024 * MiB}" in rows["gp-cat"]["difference"]
    assert rows["gp-ann"]["drifted"] is False and rows["gp-bob"]["drifted"] is False
    events = gp.hubctl("events", "-o", "json")
    assert "gp-dan's server: memory" in events.stdout, events.stdout[-2000:]
    metrics = requests.get(gp.reconciler_url + "metrics", headers={"Authorization": f"token {gp.token}"}).text
    assert "jhds_servers_drifted 2.0" in metrics
    admin, error = gp.login("admin")
    assert admin is not None, error
    page = admin.get(f"{gp.url}hub/servers", timeout=30).text  # the Servers page
    assert 'data-user="gp-cat" data-drifted="true"' in page and 'data-user="gp-ann" data-drifted="false"' in page
    assert 'id="rollout-drifted"' in page
    print(f"policy edit shown as drift in {seconds:.2f} s")


def test_rebuilt_image_tag_marks_servers_drifted(gp: Hub, engine: docker.DockerClient) -> None:
    dockerfile = f"FROM {MINIMAL}\nLABEL io.jupyterhub-ds.test=rebuilt\n".encode()
    engine.images.build(fileobj=io.BytesIO(dockerfile), tag=TEST_TAG, network_mode="none", rm=True)
    wait_for(lambda: drifted(gp) == {"gp-ann", "gp-cat", "gp-dan"}, 30, "the gp-test servers drifted")
    assert any(d.startswith(f"image {TEST_TAG}: rebuilt") for d in servers(gp)["gp-ann"]["difference"])
    assert servers(gp)["gp-bob"]["drifted"] is False  # on the minimal image


def test_rollout_one_at_a_time_warned_active_last(gp: Hub, engine: docker.DockerClient) -> None:
    users = ["gp-ann", "gp-cat", "gp-dan"]
    stop_busy, stop_watch = threading.Event(), threading.Event()
    most_down = [0]

    def keep_busy() -> None:  # gp-ann uses the server, through the proxy
        token = {"Authorization": f"token {server_token(engine, gp, 'gp-ann')}"}
        while not stop_busy.wait(1):
            requests.get(f"{gp.url}user/gp-ann/api/contents", headers=token, timeout=5)

    def watch_down() -> None:
        while not stop_watch.wait(0.2):
            listed = gp.api("GET", "users?state=active").json()
            ready = {u["name"] for u in listed if (u["servers"].get("") or {}).get("ready")}
            most_down[0] = max(most_down[0], sum(u not in ready for u in users))

    def active_since(since: datetime) -> bool:  # what the rollout reads: the hub's last_activity
        last = gp.api("GET", "users/gp-ann").json()["servers"][""].get("last_activity")
        return last is not None and datetime.fromisoformat(last) > since

    busy_from = datetime.now(UTC)
    threads = [threading.Thread(target=keep_busy, daemon=True), threading.Thread(target=watch_down, daemon=True)]
    for t in threads:
        t.start()
    wait_for(lambda: active_since(busy_from), 15, "gp-ann's activity reaches the hub", interval=0.2)
    spec = {"selector": {"drifted": True}, "maxUnavailable": 1, "skipActiveWithin": "15s", "warnBefore": "8s"}
    spec |= {"whenActive": "Wait", "activeDeadlineSeconds": 300}
    t0 = time.monotonic()
    apply(gp, "RolloutRestart", "gp-roll", spec)

    def roll() -> dict:
        return status(gp, "RolloutRestart", "gp-roll")

    wait_for(lambda: roll().get("warnedAt"), 20, "the notices")
    for user in users:  # before any restart (warnBefore 8 s): each lab holds the notice
        assert any(
            "restarts in about" in n.get("message", "") for n in lab_queue(gp, engine, user, as_activity=False)
        ), user
    wait_for(lambda: {s["user"]: s["state"] for s in roll()["servers"]}.get("gp-dan") == "Restarted", 60, "dan")
    states = {s["user"]: s["state"] for s in roll()["servers"]}
    assert states["gp-cat"] == "Restarted" and states["gp-ann"] == "Deferred", states
    stop_busy.set()  # gp-ann stops working: it is restarted last
    wait_for(lambda: roll().get("phase") == "Succeeded", 90, "the rollout")
    seconds = time.monotonic() - t0
    stop_watch.set()
    for t in threads:
        t.join(10)
    final = roll()
    rows = sorted(final["servers"], key=lambda s: s["startedAt"])
    assert [s["user"] for s in rows][-1] == "gp-ann"
    assert all(s["state"] == "Restarted" for s in rows) and final["restarted"] == 3
    for before, after in itertools.pairwise(rows):
        assert before["finishedAt"] <= after["startedAt"], rows  # one down at a time
    assert most_down[0] <= 1, most_down
    wait_for(lambda: drifted(gp) == set(), 30, "no server drifted")
    print(f"rollout of 3 servers (warn 8 s, one waited for) in {seconds:.1f} s; most down at once: {most_down[0]}")


SOCKET = "/var/run/docker.sock"
SOCKET_POLICY = """apiVersion: jupyterhub-ds/v1
kind: GroupPolicy
metadata: {name: gp-sock}
spec:
  groups: [gp-ml]
  dockerSocket: true
"""


def test_socket_policy_refused_for_an_unprotected_group(gp: Hub) -> None:
    r = gp.api("POST", "manifests", data=SOCKET_POLICY.encode())
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert (error["line"], error["path"]) == (6, "spec.dockerSocket"), error
    assert "gp-ml is not a protected group" in error["message"], error
    assert "the socket would escape admin:groups" in error["message"], error
    assert gp.api("GET", "resources/grouppolicy/gp-sock").status_code == 404  # nothing applied


def test_docker_privileged_member_gets_the_socket_through_the_seed(gp: Hub, engine: docker.DockerClient) -> None:
    seed = gp.api("GET", "resources/grouppolicy/docker-privileged").json()
    assert seed["spec"]["groups"] == ["docker-privileged"] and seed["spec"]["dockerAccess"] == "privileged"
    assert seed["metadata"]["annotations"]["jupyterhub-ds/owner"] == "settings"
    gp.create_user("gp-pia")
    assert gp.api("POST", "groups/docker-privileged/users", json={"users": ["gp-pia"]}).status_code == 200
    gp.start_server("gp-pia")
    pia = attrs(engine, gp, "gp-pia")
    assert (mounts(pia)[SOCKET]["Source"], mounts(pia)[SOCKET]["RW"]) == (SOCKET, True)
    assert pia["Config"]["Labels"]["io.jupyterhub-ds.docker-socket"] == "true"
    shown = gp.hubctl("get", "effective", "gp-pia", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    effective = json.loads(shown.stdout)
    assert effective["dockerSocket"] is True, effective
    assert effective["effective"] == {"policies": ["docker-privileged"], "dockerSocket": True}
    assert effective["hash"] == pia["Config"]["Labels"]["io.jupyterhub-ds.policy-hash"]
    assert "dockerSocket" not in attrs(engine, gp, "gp-bob")["Config"]["Labels"]["io.jupyterhub-ds.policy"]
    assert SOCKET not in mounts(attrs(engine, gp, "gp-bob"))
    gp.stop_server("gp-pia")


def test_user_policy_page_and_the_rollout_button(gp: Hub, tmp_path) -> None:
    apply_manifests(gp, policy("gp-ml", ML), policy("gp-bio", BIO))  # gp-bio back to 768M: gp-cat, gp-dan drift
    wait_for(lambda: drifted(gp) == {"gp-cat", "gp-dan"}, 20, "gp-cat and gp-dan drifted")
    admin, error = gp.login("admin")
    assert admin is not None, error
    t0 = time.monotonic()
    page = admin.get(f"{gp.url}hub/users/gp-cat/policy", timeout=30)
    seconds = time.monotonic() - t0
    assert page.status_code == 200, page.status_code
    for text in ('data-policy="gp-ml"', 'data-policy="gp-bio"', ">gp-ml</span>", "768 MiB", 'data-drifted="true"'):
        assert text in page.text, text
    assert f"memory: {1024 * MiB} -&gt; {768 * MiB}" in page.text
    assert "Docker socket</th><td>no" in page.text
    assert "Docker socket</th><td>yes" in admin.get(f"{gp.url}hub/users/gp-pia/policy", timeout=30).text
    assert admin.get(f"{gp.url}hub/users/gp-nobody/policy", timeout=30).status_code == 404
    assert 'href="/hub/users/gp-cat/policy"' in admin.get(f"{gp.url}hub/servers", timeout=30).text
    assert 'href="/hub/users/gp-pia/policy"' in admin.get(f"{gp.url}hub/privileged", timeout=30).text

    gus = gp.approved_user(admin, "gp-gus")  # no platform scope
    assert gus.get(f"{gp.url}hub/users/gp-cat/policy", timeout=30).status_code == 403
    r = gp.as_user(gus, "POST", "rollouts", json={"selector": {"drifted": True}})
    assert r.status_code == 403 and "custom:jupyterhub-ds:write:requests" in r.json()["message"], r.text

    with chromium(tmp_path / "chromium-profile") as browser:
        sign_in(browser, gp, "admin", "/hub/users/gp-cat/policy")
        wait(browser, 30).until(ec.presence_of_element_located((By.ID, "user-policy")))
        browser.set_window_size(1280, 1400)  # the whole page: groups, policies, combined, drift
        shot(browser, "policy-user-page")
        browser.set_window_size(1280, 900)
        browser.get(f"{gp.url}hub/servers")
        for field, value in (("rollout-warn", "1s"), ("rollout-active", "0")):
            element = browser.find_element(By.ID, field)
            element.clear()
            element.send_keys(value)
        browser.find_element(By.ID, "rollout-drifted").click()
        wait(browser, 30).until(lambda b: "recorded" in b.find_element(By.ID, "rollout-result").text)
        text = browser.find_element(By.ID, "rollout-result").text
        shot(browser, "policy-servers-rollout")
    name = text.split()[1]  # "Rollout <name> recorded: ..."
    t1 = time.monotonic()

    wait_for(lambda: status(gp, "RolloutRestart", name).get("phase") == "Succeeded", 120, "the rollout from the page")
    final = resource(gp, "RolloutRestart", name)
    assert final["metadata"]["annotations"]["jupyterhub-ds/owner"] == "panel"
    assert sorted(s["user"] for s in final["status"]["servers"]) == ["gp-cat", "gp-dan"]
    wait_for(lambda: drifted(gp) == set(), 30, "no server drifted after the rollout")
    print(f"user policy page in {seconds:.2f} s; rollout from the Servers page in {time.monotonic() - t1:.1f} s")
