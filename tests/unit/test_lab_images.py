"""The lab images' inputs agree with each other: lock files, requirements, the default image."""

from __future__ import annotations

import json
import re
from pathlib import Path

from vocabulary.settings import Settings

LAB = Path(__file__).resolve().parents[2] / "docker/lab"
PIN = re.compile(r"^([a-z0-9-]+)==(\S+) \\\n    --hash=sha256:[0-9a-f]{64}$", re.M)


def pins(name: str) -> dict[str, str]:
    text = (LAB / "locks" / name).read_text()
    found = dict(PIN.findall(text))
    # Every requirement line is a pin with its hash: nothing unpinned slips in.
    assert len(found) == len([line for line in text.splitlines() if re.match(r"^[a-z0-9]", line)]), name
    return found


def requested(name: str) -> set[str]:
    names = set()
    for line in (LAB / "requirements" / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            names.add(re.split(r"[<>=!~\[ ]", line)[0].lower().replace("_", "-"))
    return names


def test_the_ds_layers_are_disjoint_and_hold_what_is_asked() -> None:
    stack, lab = pins("ds-stack.txt"), pins("ds-lab.txt")
    assert not set(stack) & set(lab)
    assert requested("ds-stack.in") <= set(stack)
    assert requested("ds-lab.in") | requested("minimal.in") <= set(lab) | set(stack)


def test_minimal_has_the_same_versions_as_ds() -> None:
    ds = pins("ds-stack.txt") | pins("ds-lab.txt")
    minimal = pins("minimal.txt")
    assert requested("minimal.in") <= set(minimal)
    assert {name: ds.get(name) for name in minimal} == minimal


def test_users_get_the_ds_image_by_default() -> None:
    default = Settings.model_fields["notebook_image"].default
    assert default == "jupyterhub-ds/lab:ds"
    images_sh = (LAB.parents[1] / "scripts/images.sh").read_text()
    assert f'DEFAULT_IMAGE="{default}"' in images_sh


def test_the_kernel_is_the_default_and_runs_the_images_python() -> None:
    kernel = json.loads((LAB / "kernels/python3-ds/kernel.json").read_text())
    config = json.loads((LAB / "jupyter_server_config.json").read_text())
    assert kernel["argv"][0] == "/opt/lab/bin/python" and "{connection_file}" in kernel["argv"]
    assert config["MultiKernelManager"]["default_kernel_name"] == "python3-ds"
