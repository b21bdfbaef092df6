"""JupyterHub 6 reads spawn options in a GET URL only with the `opt-` prefix (an unprefixed
`display_name` is the server's, not the spawner's): every spawn link the platform builds or
documents passes its options that way (`/hub/spawn/<user>/<server>?opt-image=...`)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl

ROOT = Path(__file__).resolve().parents[2]
SPAWN_QUERY = re.compile(r"/spawn(?:/[^\s\"'?`)]*)?\?([^\s\"'`)#]+)")
HUB_PARAMETERS = {"next", "display_name"}  # JupyterHub's own, not the spawner's options
SOURCES = ["hub_config/**/*.html", "hub_config/**/*.py", "reconciler/**/*.py", "docs/*.md", "README.md"]


def spawn_queries() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(ROOT)), m.group(1))
        for pattern in SOURCES
        for path in ROOT.glob(pattern)
        for m in SPAWN_QUERY.finditer(path.read_text(errors="replace"))
    ]


def test_spawn_links_pass_options_with_the_opt_prefix() -> None:
    unprefixed = [
        (where, name)
        for where, query in spawn_queries()
        for name, _ in parse_qsl(query)
        if not name.startswith("opt-") and name not in HUB_PARAMETERS
    ]
    assert unprefixed == []


def test_the_check_sees_a_spawn_link() -> None:
    assert SPAWN_QUERY.search('href="/hub/spawn/alice/gpu?opt-image=x&next=/"').group(1) == "opt-image=x&next=/"
