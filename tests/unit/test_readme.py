"""The README's configuration table is generated from the settings model: keep it true."""

from __future__ import annotations

from pathlib import Path

from reconciler.cli.local import settings_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_matches_the_model() -> None:
    text = README.read_text()
    start = text.index("<!-- settings-table")
    start = text.index("\n", start) + 1
    end = text.index("<!-- /settings-table -->")
    assert text[start:end].strip() == settings_markdown(), "run `hubctl settings -o markdown` and paste it"
