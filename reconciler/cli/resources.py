"""Verbs over manifests and the stored resources, kubectl's: `validate`, `apply`, `diff`, `get`,
`describe`, `delete`."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from typing import Any

import yaml

from ..api import REGISTRY
from ..api import table as kind_table
from ..api.common import age
from .client import EXIT_INVALID, EXIT_OK, CliError
from .operations import watch
from .printing import events_table, print_data, ref, table
from .registry import KINDS_HELP, OUTPUT, Ref, Verbs, arg
from .views import VIEWS, VIEWS_HELP

verbs = Verbs()
FILENAME = arg("-f", "--filename", action="append", required=True, metavar="PATH")


def load(paths: list[str]) -> list[tuple[Any, str]]:
    from ..manifests import ManifestError, load_paths

    try:
        return load_paths(paths)
    except ManifestError as e:
        raise CliError(str(e), EXIT_INVALID) from None
    except FileNotFoundError as e:
        raise CliError(f"no such file or folder: {e.filename}") from None


def document(resource: Any) -> dict[str, Any]:
    return resource.model_dump(mode="json", by_alias=True, exclude={"status"}, exclude_none=True)


@verbs.command(
    "validate",
    "check manifests offline",
    arg("paths", nargs="+", metavar="PATH"),
    description="Validate manifest files or folders; no hub needed.",
)
def validate(args: argparse.Namespace) -> int:
    for resource, source in load(args.paths):
        print(f"{source}: {ref(resource.kind, resource.metadata.name)} valid")
    return EXIT_OK


@verbs.command(
    "apply",
    "create or update resources from manifests",
    FILENAME,
    arg("--dry-run", action="store_true", help="report what would change; change nothing"),
    arg("--prune", action="store_true", help="delete what was applied earlier from this PATH and is gone from it"),
    description="Apply every document of the files or folders, atomically: all of them, or none.",
)
def apply(args: argparse.Namespace) -> int:
    if args.prune and len(args.filename) != 1:
        raise CliError("--prune takes exactly one -f PATH: what was applied from there and is gone is deleted")
    docs = [document(r) for r, _ in load(args.filename)]
    params = {"owner": "cli", "dryRun": str(args.dry_run).lower(), "prune": str(args.prune).lower()}
    if len(args.filename) == 1:
        params["source"] = os.path.abspath(args.filename[0])
    r = args.api().call("POST", "manifests", params=params, data=json.dumps(docs))
    suffix = " (dry run)" if args.dry_run else ""
    for result in r.json()["results"]:
        print(f"{ref(result['kind'], result['name'])} {result['action']}{suffix}")
    return EXIT_OK


@verbs.command(
    "diff", "show what apply would change", FILENAME, description="Unified diff of live resources against manifests."
)
def diff(args: argparse.Namespace) -> int:
    api = args.api()
    differences = 0
    for resource, source in load(args.filename):
        live = api.fetch(resource.kind, resource.metadata.name)
        want = document(resource)
        have = (
            {
                "apiVersion": live["apiVersion"],
                "kind": live["kind"],
                "metadata": {
                    "name": live["metadata"]["name"],
                    **({"labels": live["metadata"]["labels"]} if live["metadata"].get("labels") else {}),
                },
                "spec": live["spec"],
            }
            if live
            else None
        )
        want["metadata"] = {k: v for k, v in want["metadata"].items() if v}
        if have == want:
            continue
        differences += 1
        at = ref(resource.kind, resource.metadata.name)
        before = yaml.safe_dump(have, sort_keys=False).splitlines() if have else []
        after = yaml.safe_dump(want, sort_keys=False).splitlines()
        live_name = f"live/{at}" if have else "/dev/null"
        for line in difflib.unified_diff(before, after, live_name, f"{source}/{at}", lineterm=""):
            print(line)
    return EXIT_INVALID if differences else EXIT_OK


@verbs.command(
    "get",
    "list resources of a kind, or show one",
    Ref(kind_help=KINDS_HELP + VIEWS_HELP, name_optional=True),
    OUTPUT,
    arg(
        "-w",
        "--watch",
        action="store_true",
        help="print a line at each change of phase, conditions or counts, until it finishes",
    ),
)
def get(args: argparse.Namespace) -> int:
    if args.kind in VIEWS:
        return VIEWS[args.kind](args)
    if args.watch:
        return watch(args)
    api = args.api()
    if args.name:
        item = api.call("GET", f"resources/{args.kind}/{args.name}", ok=(200,)).json()
        items = [item]
    else:
        items = api.call("GET", f"resources/{args.kind}").json()["items"]
    if args.output in ("yaml", "json"):
        data = items[0] if args.name else {"apiVersion": "v1", "kind": "List", "items": items}
        print_data(data, args.output)
        return EXIT_OK
    if not items:
        print(f"No resources of kind {args.kind} found.", file=sys.stderr)
        return EXIT_OK
    print(table(kind_table(args.kind, items)))
    return EXIT_OK


@verbs.command("describe", "show a resource's spec, status, conditions and recent events", Ref())
def describe(args: argparse.Namespace) -> int:
    api = args.api()
    item = api.call("GET", f"resources/{args.kind}/{args.name}").json()
    events = api.call("GET", f"resources/{args.kind}/{args.name}/events", params={"limit": 20}).json()["items"]
    meta, status = item["metadata"], item.get("status") or {}
    print(f"Name:          {meta['name']}")
    print(f"Kind:          {item['kind']}")
    print(f"Owner:         {meta['annotations']['jupyterhub-ds/owner']}")
    if "jupyterhub-ds/source" in meta["annotations"]:
        print(f"Source:        {meta['annotations']['jupyterhub-ds/source']}")
    print(f"Labels:        {', '.join(f'{k}={v}' for k, v in (meta.get('labels') or {}).items()) or '<none>'}")
    print(f"Generation:    {meta['generation']} (observed: {status.get('observedGeneration', '<none>')})")
    print(f"Phase:         {status.get('phase') or '<none>'}")
    print("Spec:")
    print("  " + yaml.safe_dump(item["spec"], sort_keys=False).rstrip().replace("\n", "\n  "))
    extra = {k: v for k, v in status.items() if k not in ("conditions", "phase", "observedGeneration")}
    for detail in REGISTRY[item["kind"]].details:
        print(f"{detail.title}:")
        entries = extra.pop(detail.field, None) or []
        print("\n".join("  " + line for line in table(detail.rows(entries)).splitlines()) if entries else "  <none>")
    if extra:
        print("Status:")
        print("  " + yaml.safe_dump(extra, sort_keys=False).rstrip().replace("\n", "\n  "))
    print("Conditions:")
    conditions = status.get("conditions") or []
    if conditions:
        rows = [["  TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"]]
        rows += [
            ["  " + c["type"], c["status"], c["reason"], age(c.get("lastTransitionTime")), c.get("message", "")]
            for c in conditions
        ]
        print(table(rows))
    else:
        print("  <none>")
    print("Events:")
    print(events_table(events, with_object=False) if events else "  <none>")
    return EXIT_OK


USERS = ("user", "users")  # `delete user NAME`: a person, with care (docs/roster.md)


@verbs.command(
    "delete",
    "delete a resource (the world is left as it is), or a user with care",
    Ref(kind_help=KINDS_HELP + "; or `user` to remove a person with care"),
    arg("--removal", choices=["keep", "backup", "delete"], default="keep", help="user: their volumes (default keep)"),
    description="Delete a resource: the world is left as it is. `delete user NAME` removes a person with care "
    "(a UserRemoval: signed out, servers stopped, login refused, volumes per --removal; needs admin:users).",
)
def delete(args: argparse.Namespace) -> int:
    if args.kind in USERS:
        r = args.api().call("DELETE", f"users/{args.name}/account", ok=(202,), params={"removal": args.removal})
        name = r.json()["name"]
        print(f"user {args.name}: removal requested (userremoval/{name}, removal: {args.removal})")
        print(f"follow it: hubctl wait userremoval/{name} --for=phase=Succeeded --timeout=10m")
        return EXIT_OK
    args.api().call("DELETE", f"resources/{args.kind}/{args.name}", ok=(204,))
    print(f"{args.kind.lower()}/{args.name} deleted")
    return EXIT_OK
