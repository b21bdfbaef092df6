"""The `hubctl` command: the parser built from the verb families' tables, KIND/NAME resolved,
the verb run, a `CliError` turned into its exit code."""

from __future__ import annotations

import argparse
import sys

from . import local, operations, resources, usage, users, views
from .client import EXIT_OK, EXIT_USAGE, Api, CliError
from .registry import Parser
from .views import VIEWS

# In `hubctl --help`'s order.
FAMILIES = (resources.verbs, operations.verbs, views.verbs, usage.verbs, users.verbs, local.verbs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hubctl",
        description="Operate the JupyterHub data-science platform: desired-state resources, like kubectl.",
        epilog="Exit codes: 0 success; 1 invalid manifests, refused apply, (diff) differences, (wait, reconcile)"
        " not met in time; 2 usage, connection.",
    )
    parser.add_argument("--url", help="hub URL (default: $JUPYTERHUB_URL or http://127.0.0.1:8000)")
    parser.add_argument("--token", help="API token (default: $JUPYTERHUB_API_TOKEN)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=Parser)
    for family in FAMILIES:
        for command in family.commands:
            command.add_to(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.api = lambda: Api(args.url, args.token)
    try:
        resolve_ref(args)
        return args.func(args)
    except CliError as e:
        print(f"hubctl: {e}" if e.code == EXIT_USAGE else str(e), file=sys.stderr)
        return e.code
    except BrokenPipeError:
        return EXIT_OK


def split_ref(kind: str, name: str | None) -> tuple[str, str | None]:
    """`KIND/NAME` or `KIND NAME`, as kubectl takes them."""
    if "/" not in kind:
        return kind, name
    if name:
        raise CliError(f"give KIND/NAME or KIND NAME, not both: {kind} {name}")
    kind, _, name = kind.partition("/")
    if not kind or not name or "/" in name:
        raise CliError("expected KIND/NAME, e.g. groupmembership/team-a")
    return kind, name


def resolve_ref(args: argparse.Namespace) -> None:
    """KIND/NAME split, the kind canonical (`groupmemberships` -> GroupMembership), NAME present
    where the verb needs one."""
    if not getattr(args, "kind", None) or (args.verb == "get" and args.kind in VIEWS):
        return
    if args.verb == "delete" and args.kind in ("user", "users"):  # a person, not a kind
        if not args.name:
            raise CliError("delete user needs a name: hubctl delete user NAME")
        return
    from ..api import kind_from_name

    kind, args.name = split_ref(args.kind, args.name)
    try:
        args.kind = kind_from_name(kind)
    except ValueError as e:
        raise CliError(str(e)) from None
    if getattr(args, "needs_name", False) and not args.name:
        raise CliError(f"{args.verb} needs a resource: KIND/NAME or KIND NAME")
