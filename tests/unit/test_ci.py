"""CI runs the README's set-up commands as a new user types them, in their order, on a clean
clone: `make up` (which leaves the state folder private and a hub running), then `make test`,
then `make down` whatever the outcome. Run in another order, CI would miss what a user meets
(issue 22: `make test` stopped at once after `make up`)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Set-up: two commands") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readmes_two_commands_in_their_order() -> None:
    assert readme_setup_commands() == ["make up", "make test"]
    lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert commands.index("make up") < commands.index("make test")
    assert "trap 'make down' EXIT" in commands[: commands.index("make up")]  # down whatever happens
    assert "set -euo pipefail" in commands  # a failed `make up` fails CI
