#!/usr/bin/env python3
"""The hub container's health check (HEALTHCHECK; the image has Python, not curl).

Healthy when both answer 200: the hub's /hub/health through its own proxy (so the proxy,
the hub and their routes are up) and the reconciler's /health (503 while it starts).
Addresses come from the same settings the hub reads; a failure prints what failed.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from vocabulary.settings import Settings, get_settings

TIMEOUT = 4


def probe(url: str) -> str | None:
    """None when the URL answers 200, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return None if response.status == 200 else f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as e:
        return f"{url}: HTTP {e.code}"
    except OSError as e:
        return f"{url}: {e}"


def urls(s: Settings) -> list[str]:
    """The hub through its proxy (as seen from inside the container), and the reconciler."""
    return [f"{s.proxy_url}{s.base_url}hub/health", f"http://127.0.0.1:{s.reconciler_port}/health"]


def main() -> int:
    failures = [f for f in map(probe, urls(get_settings())) if f]
    print("; ".join(failures) or "ok: hub and reconciler")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
