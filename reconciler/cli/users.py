"""Verbs over the hub's people (docs/users.md): `rename-user`, and `users import|export`
between a CSV file and a Roster manifest.

The CSV has one user a line: `name`, `groups` (separated by `;` or spaces), `email`,
`displayName` (the last two may be empty or left out); a first line starting with `name`
is a header. `users export` writes the same columns, so its output imports again.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from vocabulary import naming
from vocabulary.api import API_VERSION

from ..api.common import TERMINAL_PHASES
from ..api.fields import GROUP_PATTERN, NAME_MAX, NAME_PATTERN
from ..api.volumes import DEADLINE_SECONDS
from .client import EXIT_INVALID, EXIT_OK, CliError
from .registry import Verbs, arg

verbs = Verbs()
COLUMNS = ("name", "groups", "email", "displayName")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DISPLAY_NAME_MAX = 128
POLL_SECONDS = 0.5


class CsvError(Exception):
    """Every problem of a CSV file, each with its line: nothing was applied."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Row:
    line: int
    name: str
    groups: list[str]
    email: str = ""
    display_name: str = ""

    def entry(self) -> dict[str, Any]:
        """The Roster's `spec.users` item: optional fields only when given."""
        out: dict[str, Any] = {"name": self.name, "groups": self.groups}
        if self.email:
            out["email"] = self.email
        if self.display_name:
            out["displayName"] = self.display_name
        return out


def parse_csv(text: str, source: str = "CSV") -> list[Row]:
    """The users of a CSV file, or CsvError listing every problem as `source:line: ...`."""
    rows, problems, seen = [], [], {}
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for cells in reader:
        line = reader.line_num
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not rows and not problems and cells[0].lower() == "name":
            continue  # the header
        if len(cells) > len(COLUMNS):
            problems.append(
                f"{source}:{line}: {len(cells)} columns; expected at most {len(COLUMNS)}: {', '.join(COLUMNS)}"
            )
            continue
        name, groups, email, display = (cells + [""] * len(COLUMNS))[: len(COLUMNS)]
        here = _row_problems(name, groups, email, display)
        if name in seen:
            here.append(f"user {name!r} is also on line {seen[name]}")
        seen.setdefault(name, line)
        problems += [f"{source}:{line}: {p}" for p in here]
        if not here:
            rows.append(Row(line, name, _groups(groups), email, display))
    if problems:
        raise CsvError(problems)
    if not rows:
        raise CsvError([f"{source}: no users (expected lines of: {', '.join(COLUMNS)})"])
    return rows


def _groups(text: str) -> list[str]:
    return list(dict.fromkeys(g for g in re.split(r"[;\s]+", text) if g))


def _row_problems(name: str, groups: str, email: str, display: str) -> list[str]:
    problems = []
    if problem := naming.username_problem(name):
        problems.append(f"name {problem}")
    bad = [g for g in _groups(groups) if not re.match(GROUP_PATTERN, g)]
    if bad:
        problems.append(
            f"not a group name: {', '.join(bad)} (letters, digits and . _ @ : + -; separate with ; or spaces)"
        )
    if email and not EMAIL.match(email):
        problems.append(f"not an e-mail address: {email!r}")
    if len(display) > DISPLAY_NAME_MAX:
        problems.append(f"displayName longer than {DISPLAY_NAME_MAX} characters")
    return problems


def roster_manifest(name: str, rows: list[Row]) -> dict[str, Any]:
    """The Roster of these users: new accounts get a one-time password, removal keeps volumes."""
    if len(name) > NAME_MAX or not re.match(NAME_PATTERN, name):
        raise CliError(
            f"--roster {name!r} is not a resource name (lowercase letters, digits and -, at most {NAME_MAX})"
        )
    return {
        "apiVersion": API_VERSION,
        "kind": "Roster",
        "metadata": {"name": name},
        "spec": {"users": [r.entry() for r in rows], "removal": "keep", "passwords": "oneTime"},
    }


def export_csv(users: list[dict[str, Any]], extra: dict[str, dict[str, str]]) -> str:
    """The hub's users (their groups) as CSV that `users import` reads back; e-mail and display
    name from `extra` (the Rosters' entries), which the hub does not keep."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for user in sorted(users, key=lambda u: u["name"]):
        more = extra.get(user["name"], {})
        groups = ";".join(sorted(user.get("groups") or []))
        writer.writerow([user["name"], groups, more.get("email", ""), more.get("displayName", "")])
    return out.getvalue()


@verbs.command(
    "users",
    "import users from CSV as a Roster, or export them",
    arg("action", choices=["import", "export"]),
    arg("file", nargs="?", metavar="FILE.csv", help="import: the CSV file (- for standard input)"),
    arg("--roster", metavar="NAME", help="import: the Roster's name"),
    arg("--dry-run", action="store_true", help="import: print the Roster manifest; apply nothing"),
    arg("-o", "--output", choices=["csv"], default="csv", help="export: the format"),
    description="`users import FILE.csv --roster NAME [--dry-run]`: the CSV (name, groups, email, displayName) "
    "as a Roster manifest, applied as `hubctl apply` applies. `users export`: the hub's users and groups as CSV.",
)
def users(args: argparse.Namespace) -> int:
    if args.action == "export":
        return _export(args)
    if not args.file or not args.roster:
        raise CliError("users import needs FILE.csv and --roster NAME")
    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()  # noqa: SIM115
    except OSError as e:
        raise CliError(f"cannot read {args.file}: {e.strerror}") from None
    try:
        rows = parse_csv(text, args.file)
    except CsvError as e:
        raise CliError(f"{e}\nnothing was applied", EXIT_INVALID) from None
    manifest = roster_manifest(args.roster, rows)
    if args.dry_run:
        print(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True).rstrip())
        return EXIT_OK
    params = {"owner": "cli", "dryRun": "false", "prune": "false"}
    if args.file != "-":
        params["source"] = os.path.abspath(args.file)
    r = args.api().call("POST", "manifests", params=params, data=json.dumps([manifest]))
    for result in r.json()["results"]:
        print(f"{result['kind'].lower()}/{result['name']} {result['action']} ({len(rows)} users)")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    api, users, limit = args.api(), [], 1000
    while True:  # JupyterHub's plain list, a page at a time, until a page is not full
        page = api.call("GET", f"users?offset={len(users)}&limit={limit}").json()
        users += page
        if len(page) < limit:
            break
    extra: dict[str, dict[str, str]] = {}
    r = api.call("GET", "resources/roster", ok=(200, 404))
    if r.status_code == 200:  # a hub that knows Rosters: their e-mails and display names
        for roster in r.json().get("items", []):
            for entry in (roster.get("spec") or {}).get("users", []):
                extra.setdefault(entry["name"], {k: entry.get(k, "") for k in ("email", "displayName")})
    sys.stdout.write(export_csv(users, extra))
    return EXIT_OK


@verbs.command(
    "rename-user",
    "rename a user with their volumes, backups, groups and sign-in",
    arg("old", metavar="OLD", nargs="?"),
    arg("new", metavar="NEW", nargs="?"),
    arg("--timeout", type=float, default=3600, metavar="SECONDS", help="how long to wait (default 3600)"),
    arg("--no-wait", action="store_true", help="record the rename and return"),
    arg("--resume", metavar="REQUEST", help="go on with a failed UserRename (its deadline moved on by --deadline)"),
    arg(
        "--deadline", type=int, default=DEADLINE_SECONDS, metavar="SECONDS", help="with --resume: time it has from now"
    ),
    description="Record a UserRename (POST /hub/api/users/OLD/rename; needs admin:users) and wait for it: "
    "refused while a server of OLD runs; OLD is held for RENAME_HOLD_DAYS afterwards. --resume REQUEST "
    "re-applies a failed one with a later activeDeadlineSeconds: it resumes where it stopped.",
)
def rename_user(args: argparse.Namespace) -> int:
    api = args.api()
    if args.resume:
        if args.old or args.new:
            raise CliError("--resume REQUEST takes no OLD NEW: the request names them")
        name = _resume(api, args.resume, args.deadline)
        print(f"userrename/{name} resumed")
    elif args.old and args.new:
        r = api.call("POST", f"users/{args.old}/rename", ok=(202,), data=json.dumps({"name": args.new}))
        name = r.json()["name"]
        print(f"userrename/{name} recorded")
    else:
        raise CliError("rename-user OLD NEW, or rename-user --resume REQUEST")
    if args.no_wait:
        return EXIT_OK
    deadline, obj = time.monotonic() + args.timeout, None
    while time.monotonic() < deadline:
        obj = api.fetch("UserRename", name)
        st = (obj or {}).get("status") or {}
        meta = (obj or {}).get("metadata") or {}
        if obj is None or (st.get("phase") in TERMINAL_PHASES and st.get("observedGeneration") == meta["generation"]):
            break
        time.sleep(POLL_SECONDS)
    return _report(name, obj)


def _resume(api: Any, name: str, seconds: int) -> str:
    """Re-apply a failed UserRename with its deadline `seconds` from now: a new generation,
    so the reconciler takes it up again, from the step its status names."""
    obj = api.call("GET", f"resources/userrename/{name}", ok=(200,)).json()
    phase = (obj.get("status") or {}).get("phase")
    if phase != "Failed":
        raise CliError(f"userrename/{name} is {phase or 'Pending'}: only a failed rename is resumed", EXIT_INVALID)
    meta = obj["metadata"]
    created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    spec = {**obj["spec"], "activeDeadlineSeconds": int((datetime.now(UTC) - created).total_seconds()) + seconds}
    doc = {
        "apiVersion": API_VERSION,
        "kind": "UserRename",
        "metadata": {"name": name, "labels": meta.get("labels", {})},
    }
    api.call("POST", "manifests", params={"owner": "cli"}, data=json.dumps([{**doc, "spec": spec}]))
    return name


def _seconds(started: str | None, finished: str | None) -> float:
    """How long a request ran, from its status' times (0 where one is missing)."""
    if not started or not finished:
        return 0.0
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


def _report(name: str, obj: dict[str, Any] | None) -> int:
    spec, st = (obj or {}).get("spec") or {}, (obj or {}).get("status") or {}
    if st.get("phase") == "Succeeded":
        old, took = spec["user"], _seconds(st.get("startedAt"), st.get("finishedAt"))
        print(f"{old} is now {spec['newName']} in {took:.1f} s; {old} held until {st.get('holdUntil')}")
        for v in st.get("volumes", []):
            moved = f"{v['source']} -> {v['target']} {v['state']}"
            print(f"  volume {v['volume']}: {moved} ({v['files']} entries, tree checksum {v['checksum'][:12]})")
        for m in st.get("mustChange", []):
            where = m["source"] or "its GitOps file"
            print(f"  change GroupMembership {m['name']} (group {m['group']}) in {where}: it still names {old}")
        return EXIT_OK
    if st.get("phase") == "Failed":
        why = next((c.get("message", "") for c in st.get("conditions", []) if c.get("type") == "Ready"), "")
        raise CliError(f"userrename/{name} failed: {why}", EXIT_INVALID)
    raise CliError(f"userrename/{name}: not finished in time (phase {st.get('phase') or 'Pending'})", EXIT_INVALID)
