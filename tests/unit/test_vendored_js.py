"""The JavaScript the hub serves to its pages is vendored, pinned and whole: the committed files
are the ones SHA256SUMS names (scripts/vendor-js.sh writes it from `npm ci` of the pinned
lock and `--check` compares with the registry), the lock pins one exact version with npm's
integrity, the file is that version, the package ships it, and no page loads a script from
anywhere but the hub (no CDN at run time)."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "hub_config" / "static" / "vendor"
TEMPLATES = ROOT / "hub_config" / "templates"


def sums() -> dict[str, str]:
    lines = (VENDOR / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split(None, 1) for line in lines if line.strip())}


def test_committed_files_match_their_checksums() -> None:
    listed = sums()
    assert "chart.js/chart.umd.min.js" in listed and "chart.js/LICENSE.md" in listed, listed
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, f"{name} changed by hand"


def test_the_lock_pins_the_version_the_file_is() -> None:
    wanted = json.loads((VENDOR / "package.json").read_text())["dependencies"]["chart.js"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", wanted), f"not an exact version: {wanted}"
    locked = json.loads((VENDOR / "package-lock.json").read_text())["packages"]["node_modules/chart.js"]
    assert locked["version"] == wanted
    assert locked["integrity"].startswith("sha512-")
    banner = (VENDOR / "chart.js" / "chart.umd.min.js").read_text()[:200]
    assert f"Chart.js v{wanted}" in banner and "MIT" in banner, banner
    assert "MIT License" in (VENDOR / "chart.js" / "LICENSE.md").read_text()


def test_the_package_ships_the_static_files() -> None:
    """A non-editable install (the hub image) has them: pyproject's package-data covers each."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["hub_config"]
    static = ROOT / "hub_config" / "static"
    files = [p.relative_to(ROOT / "hub_config").as_posix() for p in static.rglob("*") if p.is_file()]
    missed = [f for f in files if not any(fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)]
    assert not missed, f"not in [tool.setuptools.package-data]: {missed}"


def test_no_page_loads_a_script_from_elsewhere() -> None:
    for template in TEMPLATES.glob("*.html"):
        for src in re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", template.read_text()):
            assert src.startswith("{{ base_url }}") or src.startswith("{{ static_url("), f"{template.name}: {src}"
