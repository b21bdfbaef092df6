"""How a verb is declared: once, beside its function, as a name, a help line and its arguments.
`Verbs` is a family's table, filled by `@verbs.command(...)`; the parser is built from the
tables (`main.build_parser`), so a verb's flags are written nowhere else."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from ..api import REGISTRY
from .client import EXIT_USAGE

Handler = Callable[[argparse.Namespace], int]

# From the registry: a kind registered is a kind `hubctl` names (docs/architecture.md).
KINDS_HELP = ", ".join(kind.lower() for kind in REGISTRY) + "; KIND/NAME or KIND NAME"


@dataclass(frozen=True)
class Arg:
    """One `add_argument(*flags, **options)`."""

    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True)
class Ref:
    """KIND and NAME, or KIND/NAME in one (split, and the NAME required unless optional, in `main`)."""

    kind_help: str = KINDS_HELP
    name_optional: bool = False


OUTPUT = arg("-o", "--output", choices=["table", "yaml", "json"], default="table")


def typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser raising ValueError: its message is the usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


@dataclass(frozen=True)
class Command:
    name: str
    func: Handler
    help: str
    description: str
    args: tuple[Arg | Ref, ...]

    def add_to(self, verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        p = verbs.add_parser(self.name, help=self.help, description=self.description)
        p.set_defaults(func=self.func)
        for a in self.args:
            if isinstance(a, Ref):
                p.add_argument("kind", metavar="KIND", help=a.kind_help)
                p.add_argument("name", metavar="NAME", nargs="?")
                p.set_defaults(needs_name=not a.name_optional)
            else:
                p.add_argument(*a.flags, **a.options)


class Verbs:
    """A family's commands, in the order they are declared (the order `hubctl --help` lists)."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def command(
        self, name: str, help: str, *args: Arg | Ref, description: str | None = None
    ) -> Callable[[Handler], Handler]:
        """Declare `func` as the verb `name`; the description defaults to the help as a sentence."""

        def register(func: Handler) -> Handler:
            sentence = description or help[0].upper() + help[1:] + "."
            self.commands.append(Command(name, func, help, sentence, args))
            return func

        return register


class Parser(argparse.ArgumentParser):
    """Usage errors exit 2 (argparse's own code), with the usage line first."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")
