"""What `make up` builds on a fresh machine: `scripts/images.sh` as `scripts/up.sh` runs it
(the user's environment, no LAB_IMAGES), against a fake engine that holds no image. Every
image the default settings need must come out of it: the users' lab (DOCKER_NOTEBOOK_IMAGE)
and the backup helper (BACKUP_HELPER_IMAGE), which the first backup otherwise ends without
(`HelperImageMissing`). The fake engine records what is imported and built; debootstrap and
pip are stand-ins too, so this takes a second and touches no network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from vocabulary.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# The defaults, whatever this shell's environment sets.
LAB = Settings.model_fields["notebook_image"].default
HELPER = Settings.model_fields["backup_helper_image"].default

FAKE_DOCKER = r"""#!/usr/bin/env bash
# A fake engine: images are lines "<tag> <input-hash label>" in $FAKE_ENGINE.
set -euo pipefail
echo "docker $*" >>"$FAKE_ENGINE.log"
touch "$FAKE_ENGINE"
case "$1" in
  image)
    [ "$2" = inspect ] || exit 1
    line=$(grep -m1 "^$3 " "$FAKE_ENGINE") || exit 1
    case "$*" in *Labels*) echo "${line#* }" ;; *) echo "sha256:$(echo "$line" | sha256sum | cut -c1-12)" ;; esac ;;
  import)
    cat >/dev/null
    key="${3##*=}"; tag="${*: -1}"
    echo "$tag $key" >>"$FAKE_ENGINE" ;;
  build)
    shift; key=""; tag=""
    while [ $# -gt 0 ]; do
      case "$1" in --label) key="${2##*=}"; shift ;; -t) tag="$2"; shift ;; esac
      shift
    done
    echo "$tag $key" >>"$FAKE_ENGINE" ;;
  images | rmi) ;;
  *) echo "fake docker: unexpected $*" >&2; exit 1 ;;
esac
"""

FAKE_DEBOOTSTRAP = r"""#!/usr/bin/env bash
set -euo pipefail
root="${*: -1}"
for dir in usr/bin usr/share/doc/x usr/share/man/x usr/share/locale/x var/cache/apt/archives var/lib/apt/lists; do
  mkdir -p "$root/$dir"
done
echo "debootstrap $*" >>"$FAKE_ENGINE.log"
"""

FAKE_PYTHON3 = r"""#!/usr/bin/env bash
# `python3 -m pip download ... -d DIR ...`: one stand-in wheel in DIR.
set -euo pipefail
while [ $# -gt 0 ]; do [ "$1" = -d ] && { mkdir -p "$2"; touch "$2/fake-1.0-py3-none-any.whl"; }; shift; done
"""

FAKE_ID = """#!/usr/bin/env bash
[ "${1:-}" = -u ] && { echo 0; exit 0; }
exec /usr/bin/id "$@"
"""


def fresh_machine_images(tmp_path: Path, **env: str) -> tuple[set[str], str]:
    """Run scripts/images.sh as `make up` does, on an empty fake engine: the images it made."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in {
        "docker": FAKE_DOCKER,
        "debootstrap": FAKE_DEBOOTSTRAP,
        "python3": FAKE_PYTHON3,
        "id": FAKE_ID,
    }.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for tool in ("docker-cli", "docker-compose"):  # the labs' docker CLI and compose: stand-ins
        if not (tmp_path / tool).exists():
            (tmp_path / tool).write_text(f"#!/bin/sh\necho {tool}\n")
    engine = tmp_path / "engine"
    # The user's environment, as `make up` sees it: no LAB_IMAGES, no image settings.
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DOCKER_", "BACKUP_", "JUPYTERHUB_"))}
    result = subprocess.run(
        [str(ROOT / "scripts/images.sh")],
        env={
            **keep,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_ENGINE": str(engine),
            "JUPYTERHUB_STATE_DIR": str(tmp_path / "state"),
            "LAB_DOCKER_CLI": str(tmp_path / "docker-cli"),
            "LAB_DOCKER_COMPOSE": str(tmp_path / "docker-compose"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {line.split()[0] for line in engine.read_text().splitlines()}, result.stdout


def test_make_up_on_a_fresh_machine_builds_every_image_the_defaults_need(tmp_path: Path) -> None:
    images, output = fresh_machine_images(tmp_path)
    assert LAB == "jupyterhub-ds/lab:ds" and LAB in images
    assert HELPER in images, f"the backup helper is not built: {sorted(images)}"
    assert f"{HELPER} (backups)" in output


@pytest.mark.parametrize("lab", ["jupyterhub-ds/lab:minimal", "jupyterhub-ds/lab:ds"])
def test_the_helper_comes_with_either_lab(tmp_path: Path, lab: str) -> None:
    images, _ = fresh_machine_images(tmp_path, DOCKER_NOTEBOOK_IMAGE=lab)
    assert {lab, HELPER} <= images


def test_with_a_registry_base_the_helper_is_built_from_it(tmp_path: Path) -> None:
    images, _ = fresh_machine_images(tmp_path, LAB_BASE_IMAGE="python:3.11-slim-bookworm")
    assert {LAB, HELPER} <= images
    assert "debootstrap" not in (tmp_path / "engine.log").read_text()


def test_a_helper_image_of_ones_own_is_left_to_its_owner(tmp_path: Path) -> None:
    images, output = fresh_machine_images(tmp_path, BACKUP_HELPER_IMAGE="registry.example/tools:1")
    assert "registry.example/tools:1" not in images and "registry.example/tools:1 (backups)" in output
    assert HELPER not in images  # the ds lab's base is another image


def test_a_new_docker_cli_rebuilds_the_labs_and_an_unchanged_one_does_not(tmp_path: Path) -> None:
    """The docker CLI and compose binaries copied into the labs are inputs of their hash."""
    fresh_machine_images(tmp_path, LAB_IMAGES="minimal")
    log = tmp_path / "engine.log"
    builds = log.read_text().count("docker build")
    fresh_machine_images(tmp_path, LAB_IMAGES="minimal")
    assert log.read_text().count("docker build") == builds  # nothing changed: nothing built
    (tmp_path / "docker-cli").write_text("#!/bin/sh\necho a newer docker\n")
    fresh_machine_images(tmp_path, LAB_IMAGES="minimal")
    assert log.read_text().count("docker build") == builds + 1
