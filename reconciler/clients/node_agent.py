"""The program a one-off Swarm task runs on one node (`python3 -c <this file> OP JSON`) to act
on that node's own volumes, which the manager's API cannot reach (volumes are node-local).

Standard library only: it runs in the helper image with the node's engine socket mounted at
/var/run/docker.sock and speaks the Engine API over it. It prints one JSON object on its last
line: {"volumes": {name: {...}}} for `inspect`, {"removed"|"absent"|"in-use": [...]} for
`remove`, {"created": [...]} for `ensure`.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
import urllib.parse

SOCKET = "/var/run/docker.sock"


class UnixConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCKET)


def call(method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    conn = UnixConnection("localhost", timeout=60)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, (json.loads(raw) if raw else None)


def disk_usage() -> object:
    """The engine's disk-usage report; the engine refuses a second while one runs (another
    survey): wait for it to end, up to two minutes."""
    deadline = time.monotonic() + 120
    while True:
        code, usage = call("GET", "/system/df")
        busy = code >= 500 and "already running" in json.dumps(usage)
        if not busy or time.monotonic() > deadline:
            return usage
        time.sleep(0.5)


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def inspect(args: dict) -> dict:
    found: dict[str, dict] = {}
    for name in args["names"]:
        code, info = call("GET", f"/volumes/{quoted(name)}")
        if code == 200 and isinstance(info, dict):
            found[name] = {"size": None, "labels": info.get("Labels") or {}}
    if args.get("sizes") and found:
        usage = disk_usage()
        for vol in (usage or {}).get("Volumes") or []:  # type: ignore[union-attr]
            if vol["Name"] in found:
                size = (vol.get("UsageData") or {}).get("Size", -1)
                found[vol["Name"]]["size"] = size if size >= 0 else None
    return {"volumes": found}


def sizes(args: dict) -> dict:
    """Every volume's size on this node (the engine's disk-usage report: a scan)."""
    usage = disk_usage()
    found = {}
    for vol in (usage or {}).get("Volumes") or []:  # type: ignore[union-attr]
        size = (vol.get("UsageData") or {}).get("Size", -1)
        found[vol["Name"]] = size if size >= 0 else None
    return {"sizes": found}


def remove(args: dict) -> dict:
    """A volume still in use is retried for `wait` seconds: the container of a server whose
    service was just removed is removed by this node a moment later."""
    result: dict[str, list] = {"removed": [], "absent": [], "in-use": []}
    for name in args["names"]:
        deadline = time.monotonic() + args.get("wait", 15)
        code, info = call("DELETE", f"/volumes/{quoted(name)}")
        while code == 409 and time.monotonic() < deadline:
            time.sleep(0.5)
            code, info = call("DELETE", f"/volumes/{quoted(name)}")
        if code == 204:
            result["removed"].append(name)
        elif code == 404:
            result["absent"].append(name)
        elif code == 409:
            result["in-use"].append([name, (info or {}).get("message", "in use")])  # type: ignore[union-attr]
        else:
            raise SystemExit(f"removing {name}: HTTP {code} {info}")
    return result


def ensure(args: dict) -> dict:
    created = []
    for name, labels in args["volumes"].items():
        if call("GET", f"/volumes/{quoted(name)}")[0] == 404:
            code, info = call("POST", "/volumes/create", {"Name": name, "Labels": labels})
            if code != 201:
                raise SystemExit(f"creating {name}: HTTP {code} {info}")
            created.append(name)
    return {"created": created}


def main() -> None:
    op, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"inspect": inspect, "sizes": sizes, "remove": remove, "ensure": ensure}[op](args)))


if __name__ == "__main__":
    main()
