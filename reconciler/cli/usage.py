"""`hubctl usage`: the usage report (docs/usage.md#reports), from `GET /hub/api/usage`."""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import Any
from urllib.parse import urlencode

from ..usage.window import parse_window
from .client import EXIT_OK, CliError
from .printing import table
from .registry import Verbs, arg

verbs = Verbs()
COLUMNS = ("serverSeconds", "cpuSeconds", "memoryGiBHours", "gpuSeconds", "storageBytes")


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def as_table(doc: dict[str, Any]) -> str:
    by = doc["by"]
    rows = [[by.upper(), "GROUPS", "SERVER-H", "CPU-H", "MEM-GIB-H", "GPU-H", "STORAGE"]]
    for r in doc["rows"]:
        rows.append(
            [
                r[by],
                ",".join(r["groups"]) or "-",
                f"{r['serverSeconds'] / 3600:.2f}",
                f"{r['cpuSeconds'] / 3600:.2f}",
                f"{r['memoryGiBHours']:.2f}",
                f"{r['gpuSeconds'] / 3600:.2f}",
                human_bytes(r["storageBytes"]),
            ]
        )
    return f"usage by {by} from {doc['since']} until {doc['until']}\n" + table(rows)


def as_csv(doc: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    by = doc["by"]
    writer.writerow([by, "groups", *COLUMNS])
    for r in doc["rows"]:
        writer.writerow([r[by], ";".join(r["groups"]), *(r[c] for c in COLUMNS)])
    return out.getvalue()


def query(args: argparse.Namespace) -> str:
    """The REST query; the window is checked here first, so a typo is a usage error (exit 2)."""
    try:
        parse_window(args.since, args.until)
    except ValueError as e:
        raise CliError(str(e)) from None
    params = {"by": args.by, "since": args.since}
    if args.until:
        params["until"] = args.until
    if args.user:
        params["user"] = args.user
    return "usage?" + urlencode(params)


@verbs.command(
    "usage",
    "report server time, CPU, memory, GPU and storage per user or group",
    arg("--by", choices=["user", "group"], default="user"),
    arg("--since", default="30d", help="a duration back from --until (30d, 12h) or a DATE/time (default 30d)"),
    arg("--until", help="a DATE (that day included) or a time; default now"),
    arg("--user", help="only this user's usage"),
    arg("-o", "--output", choices=["table", "json", "csv"], default="table"),
    description="The usage ledger's report (docs/usage.md): server time exact from the hub's starts and stops; "
    "CPU, memory and GPU from the samples' roll-ups; storage from the newest survey. Needs the platform's read scope.",
)
def usage(args: argparse.Namespace) -> int:
    doc = args.api().call("GET", query(args)).json()
    if args.output == "json":
        print(json.dumps(doc, indent=2))
    elif args.output == "csv":
        print(as_csv(doc), end="")
    else:
        print(as_table(doc))
    return EXIT_OK
