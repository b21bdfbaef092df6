"""Verbs that act on a resource's reconciliation rather than its spec, and watch it answer:
`events`, `suspend`/`resume`, `reconcile`, `wait`, and `get -w` (the watch)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from vocabulary.durations import parse_duration

from ..api.common import TERMINAL_PHASES, ready
from ..waiting import FOR_FORMS, handled, parse_for
from .client import EXIT_INVALID, EXIT_NOT_MET, EXIT_OK, Api, CliError
from .printing import clock, events_table, print_data, ref
from .registry import OUTPUT, Ref, Verbs, arg, typed

POLL_SECONDS, WATCH_SECONDS = 0.25, 0.5
TIMEOUT = {"type": typed(parse_duration), "default": "60s", "metavar": "DURATION"}

verbs = Verbs()


# --- polling and watching ------------------------------------------------------------------
def poll(
    api: Api, kind: str, name: str, test: Callable[[dict[str, Any] | None], bool], timeout: float
) -> tuple[bool, dict[str, Any] | None]:
    """Poll the resource until `test` holds (True, it) or `timeout` passes (False, as it was)."""
    deadline = time.monotonic() + timeout
    while True:
        obj = api.fetch(kind, name, timeout=min(60.0, max(5.0, deadline - time.monotonic())))
        if test(obj):
            return True, obj
        left = deadline - time.monotonic()
        if left <= 0:
            return False, obj
        time.sleep(min(POLL_SECONDS, left))


def state(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return "not found"
    st = obj.get("status") or {}
    return f"phase {st.get('phase') or '<none>'}, Ready {ready(st) or '<none>'}"


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
    parts = [clock(), ref(obj["kind"], obj["metadata"]["name"]), st.get("phase") or "<none>"]
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


def watch(args: argparse.Namespace) -> int:
    """`get KIND NAME -w`: a line per change, until a terminal phase, deletion or Ctrl-C."""
    if not args.name:
        raise CliError("--watch needs a NAME: hubctl get KIND NAME -w")
    api, at, last = args.api(), ref(args.kind, args.name), None
    try:
        while True:
            obj = api.fetch(args.kind, args.name)
            if obj is None:
                if last is None:
                    raise CliError(f"{at} not found", EXIT_INVALID)
                print(f"{clock()}  {at}  deleted")
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


# --- verbs -----------------------------------------------------------------------------------
@verbs.command(
    "events",
    "the audit trail",
    arg("kind", metavar="KIND", nargs="?", help="KIND NAME or KIND/NAME; neither for all events"),
    arg("name", metavar="NAME", nargs="?"),
    arg("--limit", type=int, default=100),
    OUTPUT,
    description="Recent events, of one resource or of all.",
)
def events(args: argparse.Namespace) -> int:
    api = args.api()
    if args.kind and not args.name:
        raise CliError("events takes KIND and NAME together, or neither")
    path = f"resources/{args.kind}/{args.name}/events" if args.kind else "events"
    items = api.call("GET", path, params={"limit": args.limit}).json()["items"]
    if args.output in ("yaml", "json"):
        print_data(items, args.output)
    elif items:
        print(events_table(items))
    else:
        print("No events.", file=sys.stderr)
    return EXIT_OK


@verbs.command("suspend", "stop reconciling a resource: spec.suspend true", Ref())
def suspend(args: argparse.Namespace) -> int:
    """`suspend` and `resume`: set spec.suspend, as `flux suspend` does."""
    args.api().call("POST", f"resources/{args.kind}/{args.name}/{args.verb}")
    print(f"{ref(args.kind, args.name)} {'suspended' if args.verb == 'suspend' else 'resumed'}")
    return EXIT_OK


verbs.command("resume", "reconcile a suspended resource again: spec.suspend false", Ref())(suspend)


@verbs.command(
    "reconcile",
    "reconcile a resource now and wait for it",
    Ref(),
    arg("--with-source", action="store_true", help="re-read the manifests folder first (GitOps)"),
    arg("--timeout", **TIMEOUT, help="how long to wait, e.g. 90s, 5m, 60 (default 60s)"),
    description="Ask the reconciler to reconcile now; exit 0 once the status says it did, 1 at the timeout.",
)
def reconcile(args: argparse.Namespace) -> int:
    """Ask for a reconcile now, then wait until the status says it was handled."""
    api, at_ref = args.api(), ref(args.kind, args.name)
    params = {"withSource": str(args.with_source).lower()}
    r = api.call("POST", f"resources/{args.kind}/{args.name}/reconcile", ok=(202,), params=params)
    at = r.json()["requested"]
    print(f"{at_ref} reconcile requested at {at}", flush=True)

    def answered(obj: dict[str, Any] | None) -> bool:
        return obj is not None and handled(obj.get("status") or {}, at)

    met, obj = poll(api, args.kind, args.name, answered, args.timeout)
    if met:
        print(f"{at_ref} reconciled at {obj['status']['lastHandledReconcileAt']}: {state(obj)}")
        return EXIT_OK
    what = f"the request of {at} was not handled within {args.timeout:g}s"
    print(f"hubctl: {at_ref}: {what} ({state(obj)})", file=sys.stderr)
    return EXIT_NOT_MET


@verbs.command(
    "wait",
    "wait for a condition, a phase or deletion",
    Ref(),
    arg("--for", dest="condition", type=typed(parse_for), required=True, help=FOR_FORMS),
    arg("--timeout", **TIMEOUT, help="e.g. 30s, 5m, 60 (default 60s)"),
    description="Exit 0 once --for holds, 1 at the timeout, as kubectl wait. A condition or a phase counts once "
    "the status has observed the current generation. A one-shot that has finished (Succeeded, "
    "Failed, Completed) without it exits 1 at once, naming the phase it ended in.",
)
def wait(args: argparse.Namespace) -> int:
    """Until `--for` holds (exit 0), can no longer hold (a finished one-shot: exit 1 at once)
    or the timeout passes (exit 1), polling the resource."""
    at, condition = ref(args.kind, args.name), args.condition

    def settled(obj: dict[str, Any] | None) -> bool:
        return condition.holds(obj) or condition.never(obj) is not None

    met, obj = poll(args.api(), args.kind, args.name, settled, args.timeout)
    if met and condition.holds(obj):
        print(f"{at} {'deleted' if condition.what == 'delete' else 'condition met'}")
        return EXIT_OK
    if met:
        print(f"hubctl: {at}: {condition.never(obj)}", file=sys.stderr)
        return EXIT_NOT_MET
    print(
        f"hubctl: timed out after {args.timeout:g}s waiting for {args.condition} on {at} ({state(obj)})",
        file=sys.stderr,
    )
    return EXIT_NOT_MET


@verbs.command(
    "roster",
    "a roster's one-time passwords, readable once",
    arg("action", choices=["passwords"]),
    arg("name", metavar="NAME", help="the Roster"),
    arg("-o", "--output", choices=["csv", "json"], default="csv"),
    description="Print the one-time passwords of the roster's new accounts not read yet, this once (after it "
    "only their hashes are kept; needs admin:users). CSV: user,password.",
)
def roster(args: argparse.Namespace) -> int:
    params = {"format": "csv"} if args.output == "csv" else {}
    r = args.api().call("POST", f"rosters/{args.name}/passwords", params=params)
    if args.output == "csv":
        sys.stdout.write(r.text)
    else:
        print_data(r.json(), "json")
    return EXIT_OK
