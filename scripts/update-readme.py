"""Rewrite the README's settings table from the settings model (`python scripts/update-readme.py`)."""

from pathlib import Path

from reconciler.cli.local import settings_markdown

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text()
start = text.index("\n", text.index("<!-- settings-table")) + 1
end = text.index("<!-- /settings-table -->")
readme.write_text(text[:start] + settings_markdown() + "\n" + text[end:])
