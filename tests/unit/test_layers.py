"""The structure is a contract: the import layers hold, and a reverse import breaks them;
modules and functions stay a size a reader can take in."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vocabulary", "reconciler", "hub_config")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MODULE_LINES = 400
MODULE_LINES_MAX = 500  # even with a reason (issue 23)
FUNCTION_LINES = 60


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def lint_with(tmp_path: Path, planted: dict[str, str]) -> subprocess.CompletedProcess:
    """lint-imports over a copy of the packages with `planted[file] = module` imports added."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for file, module in planted.items():
        with (tmp_path / file).open("a") as f:
            f.write(f"\nimport {module}  # noqa\n")
    return lint_imports(tmp_path)


def test_the_layers_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_reverse_import_breaks_the_contract(tmp_path: Path) -> None:
    # The operator reaching up into the hub's package, and the vocabulary into the operator.
    result = lint_with(
        tmp_path, {"reconciler/queue.py": "hub_config.backends", "vocabulary/api.py": "reconciler.errors"}
    )
    assert result.returncode != 0
    assert "reconciler.queue -> hub_config.backends" in result.stdout
    assert "vocabulary.api -> reconciler.errors" in result.stdout


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_modules_are_small_or_say_why() -> None:
    """A module over ~400 lines states at its top why it is one piece; none is over 500."""
    long = []
    for path in _sources():
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text)) or ""
        lines = text.count("\n")
        if lines > MODULE_LINES_MAX or (lines > MODULE_LINES and "one piece" not in doc.lower()):
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not long, long


def test_functions_are_short() -> None:
    long = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, "\n".join(long)


def test_the_hub_importing_a_controller_breaks_the_contract(tmp_path: Path) -> None:
    result = lint_with(tmp_path, {"hub_config/policies.py": "reconciler.controllers.grouppolicy"})
    assert result.returncode != 0
    assert "the hub stays off the reconciler's internals BROKEN" in result.stdout
    assert "hub_config.policies -> reconciler.controllers.grouppolicy" in result.stdout


def test_a_kind_importing_another_kind_breaks_the_contract(tmp_path: Path) -> None:
    result = lint_with(tmp_path, {"reconciler/api/volumereset.py": "reconciler.api.volumebackup"})
    assert result.returncode != 0
    assert "inside the api: each kind's module is independent, on the shared modules BROKEN" in result.stdout
    assert "reconciler.api.volumereset -> reconciler.api.volumebackup" in result.stdout


def test_a_controller_importing_another_breaks_the_contract(tmp_path: Path) -> None:
    result = lint_with(tmp_path, {"reconciler/controllers/serverdrift.py": "reconciler.controllers.grouppolicy"})
    assert result.returncode != 0
    assert "controllers are independent BROKEN" in result.stdout
    assert "reconciler.controllers.serverdrift -> reconciler.controllers.grouppolicy" in result.stdout
