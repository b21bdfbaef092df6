"""Verbs that need no hub: `schema`, `run` (the reconciler here), `settings`."""

from __future__ import annotations

import argparse
import json

from vocabulary.settings import SettingsError, load_settings, settings_table

from .client import EXIT_OK, CliError
from .registry import Verbs, arg

verbs = Verbs()


@verbs.command(
    "schema", "print the JSON Schema of manifests", description="JSON Schema of every kind, for editors and CI."
)
def schema(_args: argparse.Namespace) -> int:
    from ..api import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


@verbs.command(
    "run",
    "run the reconciler in the foreground",
    description="Run the reconciler loop here (normally the hub runs it).",
)
def run(_args: argparse.Namespace) -> int:
    from ..service import main as service_main

    return service_main()


def settings_markdown() -> str:
    """The README's configuration table (defaults, not the current values)."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for name, default, description in settings_table():
        default = f"`{default}`" if default else ""
        rows.append(f"| `{name}` | {default} | {description.replace('|', '/')} |")
    return "\n".join(rows)


@verbs.command(
    "settings",
    "show the effective settings, or check them",
    arg("--check", action="store_true", help="only validate; print 'settings OK'"),
    arg("--get", metavar="FIELD", help="print one field or derived value (e.g. public_url)"),
    arg("-o", "--output", choices=["table", "json", "markdown"], default="table"),
    description="Read every setting from the environment, as the hub does; exit 2 naming any bad variable.",
)
def settings(args: argparse.Namespace) -> int:
    try:
        current_settings = load_settings()
    except SettingsError as e:
        raise CliError(str(e)) from None
    if args.check:
        print("settings OK")
    elif args.get:
        if args.get not in type(current_settings).model_fields and not hasattr(current_settings, args.get):
            raise CliError(f"unknown setting {args.get!r}")
        print(getattr(current_settings, args.get))
    elif args.output == "markdown":
        print(settings_markdown())
    elif args.output == "json":
        dump = current_settings.model_dump(mode="json", by_alias=True, exclude={"automation_token"})
        print(json.dumps(dump, indent=2))
    else:
        width = max(len(name) for name, _, _ in settings_table())
        current = current_settings.model_dump(mode="json", by_alias=True)
        for name, _default, description in settings_table():
            value = current.get(name)
            if name == "HUB_AUTOMATION_TOKEN":
                value = "(set)" if value else ""
            elif isinstance(value, dict):
                value = json.dumps(value)
            print(f"{name:<{width}}  {value!s:<30}  {description}")
    return EXIT_OK
