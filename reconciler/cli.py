"""`hubctl`: the platform's command line (kubectl-like verbs)."""

from __future__ import annotations

import argparse
import json
import sys

from hub_config.settings import SettingsError, load_settings, settings_table

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def settings_markdown() -> str:
    """The README's configuration table (defaults, not the current values)."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for name, default, description in settings_table():
        default = f"`{default}`" if default else ""
        rows.append(f"| `{name}` | {default} | {description.replace('|', '/')} |")
    return "\n".join(rows)


def cmd_settings(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except SettingsError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        print("settings OK")
        return EXIT_OK
    if args.get:
        value = getattr(settings, args.get, None)
        if value is None and args.get not in type(settings).model_fields:
            print(f"unknown setting {args.get!r}", file=sys.stderr)
            return EXIT_USAGE
        print(value)
        return EXIT_OK
    if args.output == "markdown":
        print(settings_markdown())
        return EXIT_OK
    if args.output == "json":
        print(json.dumps(settings.model_dump(mode="json", by_alias=True, exclude={"automation_token"}), indent=2))
        return EXIT_OK
    width = max(len(name) for name, _, _ in settings_table())
    current = settings.model_dump(mode="json", by_alias=True)
    for name, _default, description in settings_table():
        value = current.get(name)
        if name == "HUB_AUTOMATION_TOKEN":
            value = "(set)" if value else ""
        elif isinstance(value, dict):
            value = json.dumps(value)
        print(f"{name:<{width}}  {value!s:<30}  {description}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubctl", description="Operate the JupyterHub data-science platform.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser(
        "settings",
        help="show the effective settings, or check them",
        description="Read every setting from the environment, as the hub does; exit 2 naming any bad variable.",
    )
    p.add_argument("--check", action="store_true", help="only validate; print 'settings OK'")
    p.add_argument("--get", metavar="FIELD", help="print one field or derived value (e.g. public_url)")
    p.add_argument("-o", "--output", choices=["table", "json", "markdown"], default="table")
    p.set_defaults(func=cmd_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
