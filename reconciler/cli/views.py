"""What the hub computes rather than stores: `hubctl get privileged|dockeraccess|servers|effective|placements|quotas`
(views, not kinds), `move-user`, the one action on placements, and `quota get|grant`."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from .client import EXIT_OK, CliError
from .printing import print_data, table
from .registry import Handler, Verbs, arg

verbs = Verbs()


def privileged(args: argparse.Namespace) -> int:
    data = args.api().call("GET", "privileged").json()
    if args.output in ("yaml", "json"):
        print_data(data, args.output)
        return EXIT_OK
    print(f"group {data['group']}: members {', '.join(data['members']) or '(none)'}; policy {data['policy']}")
    rows = [["USER", "SERVER", "CONTAINER", "HAS-SOCKET", "MEMBER", "DRIFT"]]
    for r in data["servers"]:
        container = r["container"] + ("" if r["hub_server"] else " (not a hub server)")
        yes = {True: "yes", False: "no"}
        rows.append(
            [r["user"], r["server"] or "-", container, yes[r["has_socket"]], yes[r["member"]], r["drift"] or "-"]
        )
    print(table(rows))
    print()
    print_limited(data.get("limited") or [])
    return EXIT_OK


def dockeraccess(args: argparse.Namespace) -> int:
    """Users with `limited` Docker access (the platform's proxy) and their containers."""
    data = args.api().call("GET", "privileged").json()
    if args.output in ("yaml", "json"):
        print_data(data.get("limited") or [], args.output)
        return EXIT_OK
    print_limited(data.get("limited") or [])
    return EXIT_OK


def print_limited(rows: list[dict]) -> None:
    print("limited Docker access (the platform's proxy):")
    lines = [["USER", "LEVEL", "SOCKET", "SERVER", "CONTAINERS", "RUNNING", "MEMORY", "CPUS", "QUOTA", "REMOVAL"]]
    for r in rows:
        q = r.get("quota") or {}
        quota = f"{q.get('containers', '-')} x {gib(q.get('memory'))}/{q.get('cpus', '-')}" if q else "-"
        lines.append(
            [
                r["user"],
                r["level"],
                "open" if r["socketOpen"] else "closed",
                "running" if r["serverRunning"] else "stopped",
                str(r["containers"]),
                str(r["running"]),
                gib(r["memory"]),
                f"{r['cpus']:g}",
                quota,
                f"pending since {r['stoppedSince']}" if r.get("stoppedSince") else "-",
            ]
        )
    print(table(lines))


def gib(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024**3:g}G"


def servers(args: argparse.Namespace) -> int:
    """Running servers against their policies (the drift survey); the scripts' contract is `-o json`."""
    data = args.api().call("GET", "servers").json()
    if args.output in ("yaml", "json"):
        print_data(data, args.output)
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
    print(table(rows))
    return EXIT_OK


def effective(args: argparse.Namespace) -> int:
    """How a user's groups' GroupPolicies combine (docs/policies.md)."""
    if not args.name:
        raise CliError("get effective needs a USER: hubctl get effective alice")
    data = args.api().call("GET", f"users/{quote(args.name)}/effective-policy").json()
    print_data(data, args.output if args.output in ("yaml", "json") else "yaml")
    return EXIT_OK


def placements(args: argparse.Namespace) -> int:
    """On Swarm: the nodes, and the node holding each user's volumes (docs/swarm.md)."""
    data = args.api().call("GET", "placements").json()
    if args.output in ("yaml", "json"):
        print_data(data, args.output)
        return EXIT_OK
    print(
        table(
            [["NODE", "ID", "STATE", "AVAILABILITY"]]
            + [[n["name"], n["id"][:12], n["state"], n["availability"]] for n in data["nodes"]]
        )
    )
    print()
    print(
        table([["USER", "NODE", "SINCE"]] + [[u["user"], u["nodeName"], u.get("since") or "-"] for u in data["users"]])
    )
    return EXIT_OK


def quotas(args: argparse.Namespace) -> int:
    """Users with a quota or a storage soft limit, as the Quota watch last saw them."""
    data = args.api().call("GET", "quotas").json()
    if args.output in ("yaml", "json"):
        print_data(data, args.output)
        return EXIT_OK
    rows = [["USER", "LIMITS", "REFUSED", "STORAGE", "CHECKED"]]
    for u in data["users"]:
        limits = ", ".join(
            f"{x['field']} {x['usedHours']:.2f}/{x['limitHours']:g} ({x['percent']:g}%)" for x in u.get("limits") or []
        )
        storage = ", ".join(f"{v['key']} {v['percent']:g}%" for v in u.get("storage") or [])
        rows.append(
            [u["user"], limits or "-", "yes" if u.get("refused") else "no", storage or "-", u.get("checked") or "-"]
        )
    print(table(rows))
    return EXIT_OK


# `hubctl get` of what is not a kind.
VIEWS: dict[str, Handler] = {
    "privileged": privileged,
    "dockeraccess": dockeraccess,
    "servers": servers,
    "effective": effective,
    "placements": placements,
    "quotas": quotas,
}
VIEWS_HELP = (
    "; or `privileged`: who has the Docker socket, who should, the drift, and `limited` access;"
    " `dockeraccess`: who has `limited` Docker access, their containers and use; `servers`: running"
    " servers, their policy hash and drift; `effective USER`: a user's combined GroupPolicies;"
    " `placements`: on Swarm, the node of each user's volumes; `quotas`: users with a quota or a storage"
    " soft limit and their use"
)


@verbs.command(
    "move-user",
    "on Swarm: place a user's volumes on another node",
    arg("user", metavar="USER"),
    arg("node", metavar="NODE", help="node name (label io.jupyterhub-ds.node) or id"),
    description="Record another node for a user whose node is gone (their server must be stopped). The volumes "
    "there start empty; restore a backup to bring data (docs/swarm.md).",
)
def move_user(args: argparse.Namespace) -> int:
    """On Swarm: record another node for a user whose node is gone (their server stopped)."""
    data = args.api().call("PUT", f"users/{quote(args.user)}/placement", json={"node": args.node}).json()
    print(
        f"{data['user']} moved from node {data.get('from') or '(none)'} to node {data['nodeName']}; "
        "the volumes there start empty: restore a backup to bring data"
    )
    return EXIT_OK


@verbs.command(
    "quota",
    "a user's quota and use (get), or a one-off extension (grant)",
    arg("action", choices=["get", "grant"]),
    arg("user", metavar="USER"),
    arg("--hours", type=float, help="grant: hours added to the current window's limit"),
    arg(
        "--kind",
        dest="limit",  # not `kind`: that is a resource's kind to `main.resolve_ref`
        choices=["server", "cpu", "gpu"],
        default="server",
        help="grant: which limit (default server)",
    ),
    arg("-o", "--output", choices=["table", "yaml", "json"], default="table"),
    description="`quota get USER`: the user's quota (GroupPolicy quota, combined), their use in the window, the "
    "thresholds crossed, whether a start is refused and when it frees up, their volumes against the soft limits. "
    "`quota grant USER --hours 20 [--kind cpu]`: extend the current window's limit once (an event on Quota/USER).",
)
def quota(args: argparse.Namespace) -> int:
    api, path = args.api(), f"users/{quote(args.user)}"
    if args.action == "grant":
        if args.hours is None:
            raise CliError("quota grant needs --hours: hubctl quota grant alice --hours 20")
        data = api.call(
            "POST", f"{path}/quota-grants", ok=(201,), json={"hours": args.hours, "kind": args.limit}
        ).json()
        if args.output == "table":
            print(f"granted {args.hours:g} {args.limit}-hours to {args.user} for the current window")
    else:
        data = api.call("GET", f"{path}/quota").json()
    if args.output in ("yaml", "json"):
        print_data(data, args.output)
        return EXIT_OK
    print_quota(data)
    return EXIT_OK


def print_quota(data: dict) -> None:
    if not data.get("quota"):
        print(f"{data['user']}: no quota")
    else:
        rows = [["LIMIT", "USED", "OF", "GRANTED", "PERCENT", "WINDOW", "POLICY", "FREES-UP"]]
        for x in data["limits"]:
            rows.append(
                [
                    x["field"],
                    f"{x['usedHours']:.2f} h",
                    f"{x['limitHours']:g} h",
                    f"{x['grantedHours']:g} h",
                    f"{x['percent']:g}%",
                    f"{x['windowSeconds'] / 86400:g}d",
                    x["policy"],
                    x.get("freesAt") or "-",
                ]
            )
        print(table(rows))
        print(f"enforce: {data['quota']['enforce']}; a new start is {'REFUSED' if data['refused'] else 'allowed'}")
    if data.get("storage"):
        print()
        rows = [["VOLUME", "SIZE", "SOFT-LIMIT", "PERCENT", "SURVEYED"]]
        for v in data["storage"]:
            rows.append(
                [v["volume"], gib(v["bytes"]), gib(v["softLimit"]), f"{v['percent']:g}%", v.get("surveyed") or "-"]
            )
        print(table(rows))
