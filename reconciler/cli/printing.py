"""How hubctl prints: `kind/name` references, ages, aligned tables, `-o yaml|json`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import yaml

from ..api.common import age


def ref(kind: str, name: str) -> str:
    return f"{kind.lower()}/{name}"


def clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


def table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def print_data(data: Any, output: str) -> None:
    """`-o json`, else YAML."""
    if output == "json":
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


def events_table(events: list[dict[str, Any]], with_object: bool = True) -> str:
    head = ["  AGE", "TYPE", "REASON", *(["OBJECT"] if with_object else []), "BY", "MESSAGE"]
    rows = [head]
    for e in events:
        obj = [ref(e["kind"], e["name"])] if with_object else []
        rows.append(["  " + age(e["time"]), e["type"], e["reason"], *obj, e.get("actor") or "", e["message"]])
    return table(rows)
