"""Lab image benchmark: the data-science image (`ds`) against the minimal one, same run.

- size of both images (goal for ds: under 1.5 GB), and ds's layers;
- spawn-to-ready (start request until the hub reports the server ready) of a ds server
  against a minimal one: two platforms side by side, spawns alternated, median of n
  (goal: ds under 1.5x minimal);
- cold build of ds with the wheels and the base image cached: `scripts/images.sh` with
  LAB_NO_CACHE=1 into a throwaway tag, removed afterwards.

    .venv/bin/python benchmarks/labimage.py [--repeat 5] [--no-build]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import ROOT, Hub, cleanup_docker

IMAGES = {"minimal": "jupyterhub-ds/lab:minimal", "ds": "jupyterhub-ds/lab:ds"}
COLD_REPO = "jhds-bench/lab"


def images_sh(**env: str) -> float:
    """Run scripts/images.sh with these variables; seconds taken."""
    t0 = time.perf_counter()
    result = subprocess.run(
        [str(ROOT / "scripts/images.sh")], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return time.perf_counter() - t0


def wheels_cached() -> bool:
    """Whether the wheels of ds's lock files are in the state folder (as images.sh names them)."""
    state = Path(os.environ.get("JUPYTERHUB_STATE_DIR", ROOT / ".state"))
    for lock in ("docker/lab/locks/ds-stack.txt", "docker/lab/locks/ds-lab.txt"):
        digest = hashlib.sha256(f"{lock}\n".encode() + (ROOT / lock).read_bytes()).hexdigest()[:16]
        if not (state / f"wheels-{digest}" / ".complete").is_file():
            return False
    return True


def cold_build(client: docker.DockerClient) -> float:
    """Seconds of a no-cache build of ds (wheels and base cached), into a throwaway tag."""
    if not wheels_cached():  # a first build downloads them: not what is measured
        images_sh(LAB_REPO=COLD_REPO, LAB_IMAGES="ds", LAB_NO_CACHE="1")
        remove_cold(client)
    try:
        return images_sh(LAB_REPO=COLD_REPO, LAB_IMAGES="ds", LAB_NO_CACHE="1")
    finally:
        remove_cold(client)


def remove_cold(client: docker.DockerClient) -> None:
    """The throwaway image (images.sh keeps its build stages as the cache, dropping older ones)."""
    client.images.remove(f"{COLD_REPO}:ds", force=True)


def spawn_times(repeat: int) -> dict[str, list[float]]:
    """Spawn-to-ready of each image, on two platforms side by side, alternated."""
    client = docker.from_env()
    hubs: dict[str, Hub] = {}
    times: dict[str, list[float]] = {flavour: [] for flavour in IMAGES}
    try:
        for flavour, image in IMAGES.items():
            platform = f"jhds-bench-{flavour}"
            cleanup_docker(client, platform)
            hub = Hub(
                state_dir=Path(tempfile.mkdtemp(prefix=f"{platform}-")),
                platform=platform,
                extra_env={"DOCKER_NOTEBOOK_IMAGE": image},
            )
            hubs[flavour] = hub
            assert hub.up().returncode == 0, f"make up failed ({flavour})"
            hub.create_user("labbench")
        for _ in range(repeat):
            for flavour, hub in hubs.items():
                times[flavour].append(hub.start_server("labbench"))
                hub.stop_server("labbench")
    finally:
        for flavour, hub in hubs.items():
            hub.down()
            cleanup_docker(client, f"jhds-bench-{flavour}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="spawns of each image (default 5)")
    parser.add_argument("--no-build", action="store_true", help="skip the cold build (about 3 minutes)")
    args = parser.parse_args()

    images_sh(LAB_IMAGES="ds minimal")  # both there and current (cached: seconds)
    client = docker.from_env()
    sizes = {flavour: client.images.get(image).attrs["Size"] for flavour, image in IMAGES.items()}
    layers = [
        (layer["Size"], layer["CreatedBy"]) for layer in client.api.history(IMAGES["ds"]) if layer["Size"] > 1 << 20
    ]
    times = spawn_times(args.repeat)
    build = None if args.no_build else cold_build(client)

    mb = 1e6
    print(f"image size, minimal:                     {sizes['minimal'] / mb:7.0f} MB")
    print(f"image size, ds:                          {sizes['ds'] / mb:7.0f} MB  (goal < 1500 MB)")
    for size, created_by in reversed(layers):
        what = created_by.replace("/bin/sh -c #(nop) ", "").strip()[:60] or "base image"
        print(f"  ds layer {size / mb:7.0f} MB  {what}")
    med = {flavour: statistics.median(values) for flavour, values in times.items()}
    for flavour, values in times.items():
        spread = f"n={len(values)}, max {max(values):.2f} s"
        print(f"spawn -> ready, {flavour:8} (median):       {med[flavour]:6.2f} s  ({spread})")
    print(f"  ratio ds / minimal:                    {med['ds'] / med['minimal']:6.2f}x  (goal < 1.5x)")
    if build is not None:
        print(f"cold build of ds, wheels cached:         {build:6.1f} s  (docker build --no-cache)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
