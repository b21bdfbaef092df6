"""`hubctl`: the platform's command line, with kubectl's verbs and manners.

Talks to the hub's REST API (`JUPYTERHUB_URL`, `JUPYTERHUB_API_TOKEN`, or `--url`,
`--token`). Exit codes: 0 success, 1 validation or apply errors (and, for `diff`,
differences found; for `wait` and `reconcile`, not met within the timeout), 2 usage or
connection errors.

One piece: every verb is a short function over the same few helpers (the API client, the
table and output printers), and a reader looks for a verb in one place.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import quote

import requests
import yaml

from vocabulary.durations import parse_duration
from vocabulary.settings import SettingsError, load_settings, settings_table

from .api import table
from .api.common import TERMINAL_PHASES, age, ready
from .waiting import FOR_FORMS, handled, parse_for

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_NOT_MET = EXIT_INVALID  # wait, reconcile: not within the timeout (like kubectl wait)
POLL_SECONDS, WATCH_SECONDS = 0.25, 0.5


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


# --- talking to the hub -------------------------------------------------------------
class Api:
    def __init__(self, url: str | None, token: str | None):
        url = url or os.environ.get("JUPYTERHUB_URL") or "http://127.0.0.1:8000"
        self.base = url.rstrip("/") + "/hub/api/"
        self.token = token or os.environ.get("JUPYTERHUB_API_TOKEN") or ""
        if not self.token:
            raise CliError("no API token: set JUPYTERHUB_API_TOKEN or pass --token")

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        try:
            r = requests.request(method, self.base + path, headers={"Authorization": f"token {self.token}"}, **kwargs)
        except requests.RequestException as e:
            raise CliError(f"cannot reach the hub at {self.base}: {e}") from None
        if r.status_code in ok:
            return r
        try:
            body = r.json()
        except ValueError:
            body = {"message": r.text[:300]}
        message = body.get("message") or r.reason
        if r.status_code in (401, 403):
            raise CliError(f"the hub refused the token: {message}")
        if r.status_code in (409, 422):
            lines = [message] + [_issue(e) for e in body.get("errors", [])]
            raise CliError("\n".join(lines), EXIT_INVALID)
        raise CliError(
            f"{method} {path}: {r.status_code} {message}", EXIT_INVALID if r.status_code < 500 else EXIT_USAGE
        )


def _issue(e: dict[str, Any]) -> str:
    where = f"{e['source']}:{e['line']}: " if e.get("source") and e.get("line") else ""
    path = f"{e['path']}: " if e.get("path") else ""
    return f"  {where}{path}{e['message']}"


def _ref(kind: str, name: str) -> str:
    return f"{kind.lower()}/{name}"


def _load(paths: list[str]) -> list[tuple[Any, str]]:
    from .manifests import ManifestError, load_paths

    try:
        return load_paths(paths)
    except ManifestError as e:
        raise CliError(str(e), EXIT_INVALID) from None
    except FileNotFoundError as e:
        raise CliError(f"no such file or folder: {e.filename}") from None


def _doc(resource: Any) -> dict[str, Any]:
    return resource.model_dump(mode="json", by_alias=True, exclude={"status"}, exclude_none=True)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _print(data: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


# --- waiting and watching ---------------------------------------------------------------


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


def watch_state(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What `get -w` prints a line for when it changes: phase, conditions, per-target counts."""
    st = obj.get("status") or {}
    conditions = [
        (c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in st.get("conditions") or []
    ]
    counts = json.dumps([st.get("counts"), st.get("currentRun")], sort_keys=True)
    return st.get("phase"), tuple(conditions), counts


def watch_line(obj: dict[str, Any]) -> str:
    """`12:00:01  broadcast/hello  Delivering  Delivered=False/... "..."  delivered=3 total=10`"""
    st = obj.get("status") or {}
    parts = [_clock(), _ref(obj["kind"], obj["metadata"]["name"]), st.get("phase") or "<none>"]
    for c in st.get("conditions") or []:
        reason = f"/{c['reason']}" if c.get("reason") else ""
        parts.append(
            f"{c['type']}={c['status']}{reason}" + (f" {json.dumps(c['message'])}" if c.get("message") else "")
        )
    run = st.get("currentRun") or {}
    counts = dict(run.get("counts") or st.get("counts") or {})
    if run.get("total"):
        counts.setdefault("total", run["total"])
    if counts:
        parts.append(" ".join(f"{k}={v}" for k, v in counts.items()))
    return "  ".join(parts)


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _fetch(api: Api, kind: str, name: str, timeout: float = 60) -> dict[str, Any] | None:
    r = api.call("GET", f"resources/{kind}/{name}", ok=(200, 404), timeout=timeout)
    return r.json() if r.status_code == 200 else None


def _poll(
    api: Api, kind: str, name: str, test: Callable[[dict[str, Any] | None], bool], timeout: float
) -> tuple[bool, dict[str, Any] | None]:
    """Poll the resource until `test` holds (True, it) or `timeout` passes (False, as it was)."""
    deadline = time.monotonic() + timeout
    while True:
        obj = _fetch(api, kind, name, timeout=min(60.0, max(5.0, deadline - time.monotonic())))
        if test(obj):
            return True, obj
        left = deadline - time.monotonic()
        if left <= 0:
            return False, obj
        time.sleep(min(POLL_SECONDS, left))


def _state(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return "not found"
    st = obj.get("status") or {}
    return f"phase {st.get('phase') or '<none>'}, Ready {ready(st) or '<none>'}"


# --- verbs ----------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    for resource, source in _load(args.paths):
        print(f"{source}: {_ref(resource.kind, resource.metadata.name)} valid")
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    if args.prune and len(args.filename) != 1:
        raise CliError("--prune takes exactly one -f PATH: what was applied from there and is gone is deleted")
    docs = [_doc(r) for r, _ in _load(args.filename)]
    params = {"owner": "cli", "dryRun": str(args.dry_run).lower(), "prune": str(args.prune).lower()}
    if len(args.filename) == 1:
        params["source"] = os.path.abspath(args.filename[0])
    r = args.api().call("POST", "manifests", params=params, data=json.dumps(docs))
    suffix = " (dry run)" if args.dry_run else ""
    for result in r.json()["results"]:
        print(f"{_ref(result['kind'], result['name'])} {result['action']}{suffix}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    api = args.api()
    differences = 0
    for resource, source in _load(args.filename):
        r = api.call("GET", f"resources/{resource.kind}/{resource.metadata.name}", ok=(200, 404))
        live = r.json() if r.status_code == 200 else None
        want = _doc(resource)
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
        ref = _ref(resource.kind, resource.metadata.name)
        before = yaml.safe_dump(have, sort_keys=False).splitlines() if have else []
        after = yaml.safe_dump(want, sort_keys=False).splitlines()
        live_name = f"live/{ref}" if have else "/dev/null"
        for line in difflib.unified_diff(before, after, live_name, f"{source}/{ref}", lineterm=""):
            print(line)
    return EXIT_INVALID if differences else EXIT_OK


def cmd_get_privileged(args: argparse.Namespace) -> int:
    data = args.api().call("GET", "privileged").json()
    if args.output in ("yaml", "json"):
        _print(data, args.output)
        return EXIT_OK
    print(f"group {data['group']}: members {', '.join(data['members']) or '(none)'}; policy {data['policy']}")
    rows = [["USER", "SERVER", "CONTAINER", "HAS-SOCKET", "MEMBER", "DRIFT"]]
    for r in data["servers"]:
        container = r["container"] + ("" if r["hub_server"] else " (not a hub server)")
        yes = {True: "yes", False: "no"}
        rows.append(
            [r["user"], r["server"] or "-", container, yes[r["has_socket"]], yes[r["member"]], r["drift"] or "-"]
        )
    print(_table(rows))
    return EXIT_OK


def cmd_get_servers(args: argparse.Namespace) -> int:
    """Running servers against their policies (the drift survey); the scripts' contract is `-o json`."""
    data = args.api().call("GET", "servers").json()
    if args.output in ("yaml", "json"):
        _print(data, args.output)
        return EXIT_OK
    node = ["NODE"] if data.get("swarm") else []
    rows = [["USER", "SERVER", *node, "IMAGE", "POLICIES", "HASH", "DRIFTED", "DIFFERENCE"]]
    for r in data["servers"]:
        drift = "yes" if r.get("drifted") else "no"
        policies = ",".join(r.get("policies") or []) or "-"
        diff = "; ".join(r.get("difference") or []) or "-"
        image, digest = r.get("image", ""), r.get("policyHash", "")
        where = [r.get("node") or "?"] if node else []
        rows.append([r["user"], r.get("server") or "-", *where, image, policies, digest, drift, diff])
    print(_table(rows))
    return EXIT_OK


def cmd_get_effective(args: argparse.Namespace) -> int:
    """How a user's groups' GroupPolicies combine (docs/policies.md)."""
    if not args.name:
        raise CliError("get effective needs a USER: hubctl get effective alice")
    data = args.api().call("GET", f"users/{quote(args.name)}/effective-policy").json()
    _print(data, args.output if args.output in ("yaml", "json") else "yaml")
    return EXIT_OK


def cmd_get_placements(args: argparse.Namespace) -> int:
    """On Swarm: the nodes, and the node holding each user's volumes (docs/swarm.md)."""
    data = args.api().call("GET", "placements").json()
    if args.output in ("yaml", "json"):
        _print(data, args.output)
        return EXIT_OK
    print(
        _table(
            [["NODE", "ID", "STATE", "AVAILABILITY"]]
            + [[n["name"], n["id"][:12], n["state"], n["availability"]] for n in data["nodes"]]
        )
    )
    print()
    print(
        _table([["USER", "NODE", "SINCE"]] + [[u["user"], u["nodeName"], u.get("since") or "-"] for u in data["users"]])
    )
    return EXIT_OK


def cmd_move_user(args: argparse.Namespace) -> int:
    """On Swarm: record another node for a user whose node is gone (their server stopped)."""
    data = args.api().call("PUT", f"users/{quote(args.user)}/placement", json={"node": args.node}).json()
    print(
        f"{data['user']} moved from node {data.get('from') or '(none)'} to node {data['nodeName']}; "
        "the volumes there start empty: restore a backup to bring data"
    )
    return EXIT_OK


# `hubctl get` of what is not a kind: views the hub computes.
VIEWS = {
    "privileged": cmd_get_privileged,
    "servers": cmd_get_servers,
    "effective": cmd_get_effective,
    "placements": cmd_get_placements,
}


def cmd_get(args: argparse.Namespace) -> int:
    if args.kind in VIEWS:
        return VIEWS[args.kind](args)
    if args.watch:
        return cmd_watch(args)
    api = args.api()
    if args.name:
        item = api.call("GET", f"resources/{args.kind}/{args.name}", ok=(200,)).json()
        items = [item]
    else:
        items = api.call("GET", f"resources/{args.kind}").json()["items"]
    if args.output in ("yaml", "json"):
        data = items[0] if args.name else {"apiVersion": "v1", "kind": "List", "items": items}
        _print(data, args.output)
        return EXIT_OK
    if not items:
        print(f"No resources of kind {args.kind} found.", file=sys.stderr)
        return EXIT_OK
    print(_table(table(args.kind, items)))
    return EXIT_OK


def cmd_describe(args: argparse.Namespace) -> int:
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
    if item["kind"] == "IdleCullPolicy":
        print("Servers:")
        print(_culled_table(extra.pop("servers", [])))
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
        print(_table(rows))
    else:
        print("  <none>")
    print("Events:")
    print(_events_table(events, with_object=False) if events else "  <none>")
    return EXIT_OK


def _culled_table(servers: list[dict[str, Any]]) -> str:
    """An idle-culling policy's servers: idle time, deadline, state."""
    if not servers:
        return "  <none>"
    rows = [["  USER", "SERVER", "IDLE", "DEADLINE", "STATE", "NOTE"]]
    for e in servers:
        idle = f"{e.get('idleSeconds', 0) // 60}m{e.get('idleSeconds', 0) % 60}s"
        deadline = f"{e.get('deadline', '')}{' (maxAge)' if e.get('reason') == 'maxAge' else ''}"
        state, note = e.get("state", ""), e.get("message", "")
        rows.append(["  " + e["user"], e.get("server") or "-", idle, deadline, state, note])
    return _table(rows)


def _events_table(events: list[dict[str, Any]], with_object: bool = True) -> str:
    head = ["  AGE", "TYPE", "REASON", *(["OBJECT"] if with_object else []), "BY", "MESSAGE"]
    rows = [head]
    for e in events:
        obj = [_ref(e["kind"], e["name"])] if with_object else []
        rows.append(["  " + age(e["time"]), e["type"], e["reason"], *obj, e.get("actor") or "", e["message"]])
    return _table(rows)


def cmd_delete(args: argparse.Namespace) -> int:
    args.api().call("DELETE", f"resources/{args.kind}/{args.name}", ok=(204,))
    print(f"{args.kind.lower()}/{args.name} deleted")
    return EXIT_OK


def cmd_suspend(args: argparse.Namespace) -> int:
    """`suspend` and `resume`: set spec.suspend, as `flux suspend` does."""
    args.api().call("POST", f"resources/{args.kind}/{args.name}/{args.verb}")
    print(f"{_ref(args.kind, args.name)} {'suspended' if args.verb == 'suspend' else 'resumed'}")
    return EXIT_OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Ask for a reconcile now, then wait until the status says it was handled."""
    api, ref = args.api(), _ref(args.kind, args.name)
    params = {"withSource": str(args.with_source).lower()}
    r = api.call("POST", f"resources/{args.kind}/{args.name}/reconcile", ok=(202,), params=params)
    at = r.json()["requested"]
    print(f"{ref} reconcile requested at {at}", flush=True)

    def answered(obj: dict[str, Any] | None) -> bool:
        return obj is not None and handled(obj.get("status") or {}, at)

    met, obj = _poll(api, args.kind, args.name, answered, args.timeout)
    if met:
        print(f"{ref} reconciled at {obj['status']['lastHandledReconcileAt']}: {_state(obj)}")
        return EXIT_OK
    what = f"the request of {at} was not handled within {args.timeout:g}s"
    print(f"hubctl: {ref}: {what} ({_state(obj)})", file=sys.stderr)
    return EXIT_NOT_MET


def cmd_wait(args: argparse.Namespace) -> int:
    """Until `--for` holds (exit 0), can no longer hold (a finished one-shot: exit 1 at once)
    or the timeout passes (exit 1), polling the resource."""
    ref, condition = _ref(args.kind, args.name), args.condition

    def settled(obj: dict[str, Any] | None) -> bool:
        return condition.holds(obj) or condition.never(obj) is not None

    met, obj = _poll(args.api(), args.kind, args.name, settled, args.timeout)
    if met and condition.holds(obj):
        print(f"{ref} {'deleted' if condition.what == 'delete' else 'condition met'}")
        return EXIT_OK
    if met:
        print(f"hubctl: {ref}: {condition.never(obj)}", file=sys.stderr)
        return EXIT_NOT_MET
    print(
        f"hubctl: timed out after {args.timeout:g}s waiting for {args.condition} on {ref} ({_state(obj)})",
        file=sys.stderr,
    )
    return EXIT_NOT_MET


def cmd_watch(args: argparse.Namespace) -> int:
    """`get KIND NAME -w`: a line per change, until a terminal phase, deletion or Ctrl-C."""
    if not args.name:
        raise CliError("--watch needs a NAME: hubctl get KIND NAME -w")
    api, ref, last = args.api(), _ref(args.kind, args.name), None
    try:
        while True:
            obj = _fetch(api, args.kind, args.name)
            if obj is None:
                if last is None:
                    raise CliError(f"{ref} not found", EXIT_INVALID)
                print(f"{_clock()}  {ref}  deleted")
                return EXIT_OK
            if watch_state(obj) != last:
                last = watch_state(obj)
                print(watch_line(obj), flush=True)
            st = obj.get("status") or {}
            if st.get("phase") in TERMINAL_PHASES and st.get("observedGeneration") == obj["metadata"]["generation"]:
                return EXIT_OK
            time.sleep(WATCH_SECONDS)
    except KeyboardInterrupt:
        return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    api = args.api()
    if args.kind and not args.name:
        raise CliError("events takes KIND and NAME together, or neither")
    path = f"resources/{args.kind}/{args.name}/events" if args.kind else "events"
    events = api.call("GET", path, params={"limit": args.limit}).json()["items"]
    if args.output in ("yaml", "json"):
        _print(events, args.output)
    elif events:
        print(_events_table(events))
    else:
        print("No events.", file=sys.stderr)
    return EXIT_OK


def cmd_schema(_args: argparse.Namespace) -> int:
    from .api import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_run(_args: argparse.Namespace) -> int:
    from .service import main as service_main

    return service_main()


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
        raise CliError(str(e)) from None
    if args.check:
        print("settings OK")
    elif args.get:
        if args.get not in type(settings).model_fields and not hasattr(settings, args.get):
            raise CliError(f"unknown setting {args.get!r}")
        print(getattr(settings, args.get))
    elif args.output == "markdown":
        print(settings_markdown())
    elif args.output == "json":
        print(json.dumps(settings.model_dump(mode="json", by_alias=True, exclude={"automation_token"}), indent=2))
    else:
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


# --- the parser -------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


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

    def verb(name: str, func: Any, help: str, description: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help, description=description)
        p.set_defaults(func=func)
        return p

    add_manifest_verbs(verb)
    add_resource_verbs(verb)
    add_control_verbs(verb)
    add_other_verbs(verb)
    return parser


Verb = Any  # (name, func, help, description) -> the verb's ArgumentParser
KINDS_HELP = (
    "groupmembership, broadcast, volumereset, serverrestart, idlecullpolicy, grouppolicy, rolloutrestart;"
    " KIND/NAME or KIND NAME"
)


def add_ref(p: argparse.ArgumentParser, name_optional: bool = False, kind_help: str = KINDS_HELP) -> None:
    """KIND and NAME, or KIND/NAME in one (split in `main`)."""
    p.add_argument("kind", metavar="KIND", help=kind_help)
    p.add_argument("name", metavar="NAME", nargs="?")
    p.set_defaults(needs_name=not name_optional)


def _typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser raising ValueError: its message is the usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def add_manifest_verbs(verb: Verb) -> None:
    p = verb("validate", cmd_validate, "check manifests offline", "Validate manifest files or folders; no hub needed.")
    p.add_argument("paths", nargs="+", metavar="PATH")

    p = verb(
        "apply",
        cmd_apply,
        "create or update resources from manifests",
        "Apply every document of the files or folders, atomically: all of them, or none.",
    )
    p.add_argument("-f", "--filename", action="append", required=True, metavar="PATH")
    p.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete what was applied earlier from this PATH and is gone from it",
    )

    p = verb("diff", cmd_diff, "show what apply would change", "Unified diff of live resources against manifests.")
    p.add_argument("-f", "--filename", action="append", required=True, metavar="PATH")


def add_resource_verbs(verb: Verb) -> None:

    for name, func, help in (
        ("get", cmd_get, "list resources of a kind, or show one"),
        ("describe", cmd_describe, "show a resource's spec, status, conditions and recent events"),
        ("delete", cmd_delete, "delete a resource (the world is left as it is)"),
    ):
        p = verb(name, func, help, help[0].upper() + help[1:] + ".")
        privileged = (
            "; or `privileged`: who has the Docker socket, who should, the drift; `servers`: running"
            " servers, their policy hash and drift; `effective USER`: a user's combined GroupPolicies;"
            " `placements`: on Swarm, the node of each user's volumes"
        )
        add_ref(p, name_optional=name == "get", kind_help=KINDS_HELP + (privileged if name == "get" else ""))
        if name == "get":
            p.add_argument("-o", "--output", choices=["table", "yaml", "json"], default="table")
            p.add_argument(
                "-w",
                "--watch",
                action="store_true",
                help="print a line at each change of phase, conditions or counts, until it finishes",
            )

    p = verb("events", cmd_events, "the audit trail", "Recent events, of one resource or of all.")
    p.add_argument("kind", metavar="KIND", nargs="?", help="KIND NAME or KIND/NAME; neither for all events")
    p.add_argument("name", metavar="NAME", nargs="?")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("-o", "--output", choices=["table", "yaml", "json"], default="table")


def add_control_verbs(verb: Verb) -> None:
    for name, help in (
        ("suspend", "stop reconciling a resource: spec.suspend true (GroupMembership, Broadcast)"),
        ("resume", "reconcile a suspended resource again: spec.suspend false"),
    ):
        add_ref(verb(name, cmd_suspend, help, help[0].upper() + help[1:] + "."))

    timeout = {"type": _typed(parse_duration), "default": "60s", "metavar": "DURATION"}
    p = verb(
        "reconcile",
        cmd_reconcile,
        "reconcile a resource now and wait for it",
        "Ask the reconciler to reconcile now; exit 0 once the status says it did, 1 at the timeout.",
    )
    add_ref(p)
    p.add_argument("--with-source", action="store_true", help="re-read the manifests folder first (GitOps)")
    p.add_argument("--timeout", **timeout, help="how long to wait, e.g. 90s, 5m, 60 (default 60s)")

    p = verb(
        "wait",
        cmd_wait,
        "wait for a condition, a phase or deletion",
        "Exit 0 once --for holds, 1 at the timeout, as kubectl wait. A condition or a phase counts once "
        "the status has observed the current generation. A one-shot that has finished (Succeeded, "
        "Failed, Completed) without it exits 1 at once, naming the phase it ended in.",
    )
    add_ref(p)
    p.add_argument("--for", dest="condition", type=_typed(parse_for), required=True, help=FOR_FORMS)
    p.add_argument("--timeout", **timeout, help="e.g. 30s, 5m, 60 (default 60s)")


def add_other_verbs(verb: Verb) -> None:
    p = verb(
        "move-user",
        cmd_move_user,
        "on Swarm: place a user's volumes on another node",
        "Record another node for a user whose node is gone (their server must be stopped). The volumes "
        "there start empty; restore a backup to bring data (docs/swarm.md).",
    )
    p.add_argument("user", metavar="USER")
    p.add_argument("node", metavar="NODE", help="node name (label io.jupyterhub-ds.node) or id")
    verb("schema", cmd_schema, "print the JSON Schema of manifests", "JSON Schema of every kind, for editors and CI.")
    verb(
        "run",
        cmd_run,
        "run the reconciler in the foreground",
        "Run the reconciler loop here (normally the hub runs it).",
    )

    p = verb(
        "settings",
        cmd_settings,
        "show the effective settings, or check them",
        "Read every setting from the environment, as the hub does; exit 2 naming any bad variable.",
    )
    p.add_argument("--check", action="store_true", help="only validate; print 'settings OK'")
    p.add_argument("--get", metavar="FIELD", help="print one field or derived value (e.g. public_url)")
    p.add_argument("-o", "--output", choices=["table", "json", "markdown"], default="table")


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


def resolve_ref(args: argparse.Namespace) -> None:
    """KIND/NAME split, the kind canonical (`groupmemberships` -> GroupMembership), NAME present
    where the verb needs one."""
    if not getattr(args, "kind", None) or (args.verb == "get" and args.kind in VIEWS):
        return
    from .api import kind_from_name

    kind, args.name = split_ref(args.kind, args.name)
    try:
        args.kind = kind_from_name(kind)
    except ValueError as e:
        raise CliError(str(e)) from None
    if getattr(args, "needs_name", False) and not args.name:
        raise CliError(f"{args.verb} needs a resource: KIND/NAME or KIND NAME")


if __name__ == "__main__":
    sys.exit(main())
