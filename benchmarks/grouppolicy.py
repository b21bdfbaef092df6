"""GroupPolicy benchmark: spawn time with a policy against without; one drift survey of 100 servers.

1. Spawn: one platform (`make up`), two users, `bp-plain` in no group and `bp-member` in a
   group with a GroupPolicy (memory, CPUs as many as the host has, environment, a volume, two
   images; limits that do not bind, so the cost measured is the policy's own); their default
   servers are started and stopped alternately, --repeat times each, request to ready (the
   hub's REST API). Goal: the member's median within 5 % of the plain one's.
2. Drift survey: --servers containers of the lab image running `sleep` (not labs: 100 labs
   would measure the host's memory, not the survey), labelled as the spawner labels servers
   (user, policy hash and policy, image and image id), half of them members of an edited
   policy; the survey as the reconciler runs it (`running_containers`, one `inspect_image`
   per image reference, `serverdrift.survey`) with the hub's user listing replaced by a map
   in memory. Engine calls are counted at the Docker client's HTTP session.

    .venv/bin/python benchmarks/grouppolicy.py [--repeat 5] [--servers 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.api.grouppolicy import GroupPolicySpec
from reconciler.clients.docker import Engine
from reconciler.controllers.serverdrift import survey
from reconciler.effective import NamedGroupPolicy, combine, policy_hash
from tests.harness import Hub, cleanup_docker
from vocabulary import naming

PLATFORM = "jhds-bench-policy"
IMAGE = "jupyterhub-ds/lab:minimal"
POLICY = {
    "groups": ["bp-team"],
    # Limits that do not bind while a lab starts: a CPU limit below what JupyterLab uses to
    # start slows the start by itself, which is the policy working, not its cost.
    "resources": {"memory": "4G", "cpus": float(os.cpu_count() or 1)},
    "environment": {"MLFLOW_TRACKING_URI": "http://mlflow:5000"},
    "images": [IMAGE, "jupyterhub-ds/lab:ds"],
    "volumes": {f"{PLATFORM}-datasets": {"mount": "/mnt/datasets", "readOnly": True}},
}


def spawn_times(repeat: int) -> tuple[list[float], list[float]]:
    hub = Hub(state_dir=Path(tempfile.mkdtemp(prefix="jhds-bench-policy-")), platform=PLATFORM)
    try:
        assert hub.up().returncode == 0, "make up failed"
        doc = {"apiVersion": "jupyterhub-ds/v1", "kind": "GroupPolicy", "metadata": {"name": "bp"}, "spec": POLICY}
        assert hub.api("POST", "manifests", data=json.dumps(doc).encode()).status_code == 200
        for user in ("bp-plain", "bp-member"):
            hub.create_user(user)
        assert hub.api("POST", "groups/bp-team").status_code in (201, 409)
        assert hub.api("POST", "groups/bp-team/users", json={"users": ["bp-member"]}).status_code == 200
        hub.start_server("bp-plain")  # warm-up: image in the page cache
        hub.stop_server("bp-plain")
        plain, member = [], []
        for _ in range(repeat):
            plain.append(hub.start_server("bp-plain"))
            hub.stop_server("bp-plain")
            member.append(hub.start_server("bp-member"))
            hub.stop_server("bp-member")
        return plain, member
    finally:
        hub.down()
        client = docker.from_env()
        cleanup_docker(client, PLATFORM)
        with contextlib.suppress(docker.errors.NotFound):  # created by the engine at the first start, unlabelled
            client.volumes.get(f"{PLATFORM}-datasets").remove(force=True)


class Counting:
    """Counts the HTTP requests a Docker client makes."""

    def __init__(self, client: docker.DockerClient):
        self.calls = 0
        session_send = client.api.send

        def send(request, **kwargs):  # type: ignore[no-untyped-def]
            self.calls += 1
            return session_send(request, **kwargs)

        client.api.send = send  # type: ignore[method-assign]


def drift_survey(n: int) -> tuple[float, int, int]:
    client = docker.from_env()
    cleanup_docker(client, PLATFORM)
    before = NamedGroupPolicy("bp", GroupPolicySpec.model_validate(POLICY))
    after = NamedGroupPolicy("bp", GroupPolicySpec.model_validate({**POLICY, "resources": {"memory": "2G"}}))
    image_id = client.images.get(IMAGE).id
    groups_of = {}
    try:
        for i in range(n):
            user = f"bp-{i:03d}"
            groups_of[user] = ["bp-team"] if i % 2 else []
            eff = combine(groups_of[user], [before])
            labels = naming.object_labels(PLATFORM, user, "") | {
                naming.LABEL_POLICY_HASH: policy_hash(eff),
                naming.LABEL_POLICY: json.dumps(eff.as_dict()),
                naming.LABEL_IMAGE: IMAGE,
                naming.LABEL_IMAGE_ID: image_id,
            }
            client.containers.run(
                IMAGE, ["sleep", "600"], detach=True, labels=labels, network_mode="none", name=f"{PLATFORM}-{i}"
            )
        engine = Engine()
        counter = Counting(engine.client)

        async def one() -> int:
            containers = await engine.running_containers(PLATFORM)
            refs = {(c.get("Labels") or {}).get(naming.LABEL_IMAGE, "") for c in containers}
            ids = await engine.call(lambda: {r: engine.client.api.inspect_image(r)["Id"] for r in refs})
            rows = survey(containers, groups_of, [after], ids, {}, datetime.now(UTC))
            return sum(r.drifted for r in rows)

        t0 = time.perf_counter()
        drifted = asyncio.run(one())
        return time.perf_counter() - t0, counter.calls, drifted
    finally:
        cleanup_docker(client, PLATFORM)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--skip-spawn", action="store_true")
    args = parser.parse_args()
    seconds, calls, drifted = drift_survey(args.servers)
    print(f"drift survey of {args.servers} running servers: {seconds * 1000:.0f} ms, {calls} engine calls")
    print(f"  drifted found: {drifted} (expected {args.servers // 2})")
    if args.skip_spawn:
        return 0
    plain, member = spawn_times(args.repeat)
    p, m = statistics.median(plain), statistics.median(member)
    print(f"spawn without a policy (median of {len(plain)}): {p:.2f} s  {[round(x, 2) for x in plain]}")
    print(f"spawn with a policy    (median of {len(member)}): {m:.2f} s  {[round(x, 2) for x in member]}")
    print(f"  ratio with / without: {m / p:.3f} (goal <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
