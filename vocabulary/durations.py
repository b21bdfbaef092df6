"""How durations are written, everywhere (manifests' `validFor`, `hubctl --timeout`, the
wait endpoint): `90s`, `5m`, `2h`, `1d12h`, `500ms`, or a bare number of seconds."""

from __future__ import annotations

import re

UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")


def parse_duration(value: str | int | float) -> float:
    """Seconds; ValueError naming the accepted forms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip() if isinstance(value, str) else ""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _PART.findall(text)
    if not text or not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"must be a duration such as 90s, 5m, 2h, 1d12h, or a number of seconds (got {value!r})")
    return sum(float(n) * UNITS[u] for n, u in parts)
