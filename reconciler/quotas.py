"""Quotas and storage soft limits (GroupPolicy `quota`, `storage`; docs/usage.md#quotas) as
pure functions over plain inputs, like `culling.py`: how a user's policies combine, how much
of each limit their use in the rolling window takes, which warning thresholds it crossed,
whether a new spawn is refused, and when enough use leaves the window for it to free up.

The Quota watch (`controllers/quota.py`), the hub's spawn check (`hub_config/quota_check.py`)
and the home page call the same functions, with the ledger's figures
(`reconciler/usage/report.py`); the unit tests call them with made-up ones. One piece
(a little over 400 lines): the combination, the decision and the notices share its types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from .api.grouppolicy import QuotaEnforce
from .effective import NamedGroupPolicy, applying

QuotaKind = Literal["server", "cpu", "gpu"]
KINDS: tuple[QuotaKind, ...] = ("server", "cpu", "gpu")
FIELD = {"server": "serverHours", "cpu": "cpuHours", "gpu": "gpuHours"}
LABEL = {"server": "server-hours", "cpu": "CPU-hours", "gpu": "GPU-hours"}
WARN_AT: tuple[int, ...] = (80, 95)  # percent of a limit: a notice in the lab and on the home page
QUOTA_KIND = "Quota"  # the watch's key, Quota/<user>, and where grants are recorded


@dataclass(frozen=True)
class Limit:
    """One limit of the combined quota: `hours` over a rolling window of `window` seconds,
    from the policy `policy`."""

    hours: float
    window: int
    policy: str


@dataclass(frozen=True)
class EffectiveQuota:
    limits: dict[QuotaKind, Limit]
    enforce: QuotaEnforce
    policies: list[str]

    @property
    def window(self) -> int:
        """The longest window of the limits: how far back the ledger is read."""
        return max(lim.window for lim in self.limits.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "limits": {
                FIELD[k]: {"hours": lim.hours, "windowSeconds": lim.window, "policy": lim.policy}
                for k, lim in self.limits.items()
            },
            "enforce": self.enforce,
            "policies": self.policies,
        }


@dataclass(frozen=True)
class StorageSoftLimit:
    bytes: int
    warn_at: tuple[int, ...]
    policy: str


def combine_quota(groups: Iterable[str], policies: Iterable[NamedGroupPolicy]) -> EffectiveQuota | None:
    """The quota of a member of `groups`, or None (no policy of theirs gives one).

    The most generous wins, per limit: of the policies giving that limit, the one allowing
    the most hours per day of window (ties: more hours, then priority order). A limit no
    policy gives is no limit. `enforce` is `stop` only if every policy with a quota says so.
    """
    found = [p for p in applying(groups, policies) if p.spec.quota is not None]
    if not found:
        return None
    limits: dict[QuotaKind, Limit] = {}
    for kind in KINDS:
        offers = []
        for p in found:  # highest priority first: max() keeps the first of equals
            q = p.spec.quota
            assert q is not None
            hours = getattr(q, f"{kind}_hours")
            if hours is not None:
                offers.append(Limit(hours, q.window, p.name))
        if offers:
            limits[kind] = max(offers, key=lambda lim: (lim.hours / lim.window, lim.hours))
    enforce: QuotaEnforce = "stop" if all(p.spec.quota and p.spec.quota.enforce == "stop" for p in found) else "spawn"
    return EffectiveQuota(limits, enforce, [p.name for p in found])


def storage_limits_json(limits: Mapping[str, StorageSoftLimit]) -> dict[str, dict[str, Any]]:
    """The combined soft limits as served and stored: {volume key: {softLimit, warnAt, policy}}."""
    return {k: {"softLimit": v.bytes, "warnAt": list(v.warn_at), "policy": v.policy} for k, v in limits.items()}


def combine_storage(groups: Iterable[str], policies: Iterable[NamedGroupPolicy]) -> dict[str, StorageSoftLimit]:
    """Per volume key, the largest soft limit of the member's policies, with its `warnAt`."""
    out: dict[str, StorageSoftLimit] = {}
    for p in applying(groups, policies):
        for key, limit in p.spec.storage.items():
            if key not in out or limit.bytes > out[key].bytes:
                out[key] = StorageSoftLimit(limit.bytes, tuple(limit.warn_at), p.name)
    return out


# --- grants ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """An operator's one-off extension: `hours` more of `kind` for the window it falls in."""

    at: datetime
    kind: QuotaKind
    hours: float
    by: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"at": iso(self.at), "kind": self.kind, "hours": self.hours, "by": self.by}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Grant:
        return cls(
            datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00")),
            data["kind"],
            float(data["hours"]),
            data.get("by", ""),
        )


def granted_hours(grants: Iterable[Grant], kind: QuotaKind, window: int, now: datetime) -> float:
    """The grants of `kind` inside the rolling window: each extends it once, for as long as
    it lies in the window, then lapses with the use it covered."""
    start = now - timedelta(seconds=window)
    return sum(g.hours for g in grants if g.kind == kind and start < g.at <= now)


def live_grants(grants: Iterable[Grant], window: int, now: datetime) -> list[Grant]:
    """The grants still inside the longest window (what the watch keeps in its status)."""
    start = now - timedelta(seconds=window)
    return [g for g in grants if g.at > start]


# --- the decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    """A user's use of one kind in the window: `seconds` in all, and the same in buckets
    (start, seconds), oldest first, `step` seconds each, for when it leaves the window."""

    seconds: float
    buckets: Sequence[tuple[datetime, float]] = ()
    step: int = 3600


@dataclass(frozen=True)
class LimitState:
    kind: QuotaKind
    used_hours: float
    limit_hours: float  # the policy's, plus the grants in the window
    granted_hours: float
    window: int
    policy: str
    percent: float
    crossed: tuple[int, ...]  # the WARN_AT thresholds reached
    frees_at: datetime | None  # when use falls below the limit again (None: not at it)

    @property
    def full(self) -> bool:
        return self.percent >= 100

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "field": FIELD[self.kind],
            "usedHours": round(self.used_hours, 4),
            "limitHours": round(self.limit_hours, 4),
            "grantedHours": self.granted_hours,
            "windowSeconds": self.window,
            "policy": self.policy,
            "percent": round(self.percent, 1),
            "crossed": list(self.crossed),
            "full": self.full,
            "freesAt": iso(self.frees_at),
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> LimitState:
        """A state as `as_dict` gave it (the Quota watch's status), to say its refusal again."""
        frees = data.get("freesAt")
        return cls(
            data["kind"],
            float(data["usedHours"]),
            float(data["limitHours"]),
            float(data.get("grantedHours") or 0.0),
            int(data["windowSeconds"]),
            str(data["policy"]),
            float(data["percent"]),
            tuple(data.get("crossed") or ()),
            datetime.fromisoformat(str(frees).replace("Z", "+00:00")) if frees else None,
        )


@dataclass(frozen=True)
class QuotaDecision:
    limits: list[LimitState]
    enforce: QuotaEnforce

    @property
    def full(self) -> list[LimitState]:
        return [s for s in self.limits if s.full]

    @property
    def refused(self) -> bool:
        return bool(self.full)

    def as_dict(self) -> dict[str, Any]:
        return {"limits": [s.as_dict() for s in self.limits], "enforce": self.enforce, "refused": self.refused}


def frees_at(use: Use, limit_seconds: float, window: int, now: datetime) -> datetime | None:
    """When enough of the use leaves the rolling window for it to fall below the limit
    (a bucket counts as leaving at its end, so never too early); None when below it now.
    Use the buckets do not show (counted but not bucketed) leaves one window from now."""
    excess = use.seconds - limit_seconds
    if excess < 0:
        return None
    left = 0.0
    for start, seconds in use.buckets:
        left += seconds
        if left > excess:
            return max(now, start + timedelta(seconds=use.step + window))
    return now + timedelta(seconds=window)


def limit_state(kind: QuotaKind, use: Use, limit: Limit, grants: Iterable[Grant], now: datetime) -> LimitState:
    granted = granted_hours(grants, kind, limit.window, now)
    limit_hours = limit.hours + granted
    used_hours = use.seconds / 3600
    percent = 100.0 * used_hours / limit_hours
    crossed = tuple(t for t in WARN_AT if percent >= t)
    return LimitState(
        kind,
        used_hours,
        limit_hours,
        granted,
        limit.window,
        limit.policy,
        percent,
        crossed,
        frees_at(use, limit_hours * 3600, limit.window, now),
    )


def decide(
    usage: Mapping[QuotaKind, Use], quota: EffectiveQuota, grants: Iterable[Grant], now: datetime
) -> QuotaDecision:
    """Each limit of `quota` against the use in its window (plus the grants in it)."""
    grants = list(grants)
    states = [limit_state(k, usage.get(k, Use(0.0)), lim, grants, now) for k, lim in quota.limits.items()]
    return QuotaDecision(states, quota.enforce)


def refusal_message(decision: QuotaDecision) -> str | None:
    """What a refused spawn says: which quota, the figures, when it frees up."""
    if not decision.refused:
        return None
    parts = []
    for s in decision.full:
        days = s.window / 86400
        window = f"{days:g} days" if s.window % 86400 == 0 else f"{s.window / 3600:g} hours"
        granted = f" (with {s.granted_hours:g} h granted)" if s.granted_hours else ""
        when = f"; it frees up at {s.frees_at:%Y-%m-%d %H:%M} UTC" if s.frees_at else ""
        parts.append(
            f"your {LABEL[s.kind]} quota of policy {s.policy} is used up: {s.used_hours:.2f} of "
            f"{s.limit_hours:g} h{granted} in the last {window} ({s.percent:.0f} %){when}"
        )
    return "You cannot start a server: " + "; ".join(parts) + ". Ask an operator for a grant if you need more."


# --- notices -------------------------------------------------------------------------------


def quota_notices_due(
    decision: QuotaDecision, sent: Mapping[str, Mapping[str, datetime]], now: datetime
) -> list[tuple[LimitState, int]]:
    """Per limit, the highest threshold crossed and not yet told within its window (one
    notice, not two, when both are crossed at once); 100 % counts as a threshold too."""
    due = []
    for s in decision.limits:
        reached = [*s.crossed, *([100] if s.full else [])]
        if not reached:
            continue
        top = reached[-1]
        before = (sent.get(s.kind) or {}).get(str(top))
        if before is None or before <= now - timedelta(seconds=s.window):
            due.append((s, top))
    return due


def quota_notice(s: LimitState, threshold: int, enforce: QuotaEnforce) -> str:
    head = f"You have used {s.percent:.0f} % of your {LABEL[s.kind]} quota ({s.used_hours:.2f} of {s.limit_hours:g} h"
    tail = f" in {s.window / 86400:g} days, policy {s.policy})."
    if threshold < 100:
        what = " At 100 % new servers are refused" + (
            " and your running servers are stopped." if enforce == "stop" else "."
        )
        return head + tail + what
    when = f" It frees up at {s.frees_at:%Y-%m-%d %H:%M} UTC." if s.frees_at else ""
    if enforce == "stop":
        return head + tail + " Your running servers are being stopped: save your work now." + when
    return head + tail + " Your running server may continue, but no new server can be started." + when


@dataclass(frozen=True)
class StorageState:
    key: str
    volume: str
    bytes: int
    limit: int
    policy: str
    percent: float
    crossed: tuple[int, ...]
    surveyed: str | None = None

    @property
    def over(self) -> bool:
        return self.bytes > self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "volume": self.volume,
            "bytes": self.bytes,
            "softLimit": self.limit,
            "policy": self.policy,
            "percent": round(self.percent, 1),
            "crossed": list(self.crossed),
            "over": self.over,
            "surveyed": self.surveyed,
        }


def storage_states(sizes: Iterable[Mapping[str, Any]], limits: Mapping[str, StorageSoftLimit]) -> list[StorageState]:
    """The user's surveyed volumes (`storage_by_user` rows: volume, kind, bytes) against the
    soft limit of their kind."""
    out = []
    for row in sizes:
        limit = limits.get(str(row.get("kind")))
        if limit is None or row.get("bytes") is None:
            continue
        size = int(row["bytes"])
        percent = 100.0 * size / limit.bytes
        crossed = tuple(t for t in limit.warn_at if percent >= t)
        out.append(
            StorageState(
                str(row["kind"]),
                str(row["volume"]),
                size,
                limit.bytes,
                limit.policy,
                percent,
                crossed,
                row.get("surveyed"),
            )
        )
    return out


def storage_notices_due(
    states: Iterable[StorageState], sent: Mapping[str, Sequence[int]]
) -> tuple[list[StorageState], dict[str, list[int]]]:
    """The volumes with a threshold crossed that was not told yet, and what is told after
    (a threshold fallen below is forgotten, so crossing it again tells again)."""
    due, after = [], {}
    for s in states:
        before = [t for t in sent.get(s.key, []) if t in s.crossed]
        if s.crossed and s.crossed[-1] not in before:
            due.append(s)
        if s.crossed:
            after[s.key] = list(s.crossed) if s in due else before
    return due, after


def storage_notice(s: StorageState) -> str:
    over = "over" if s.over else "at"
    return (
        f"Your {s.key} volume holds {human_bytes(s.bytes)}, {over} {s.percent:.0f} % of its soft limit of "
        f"{human_bytes(s.limit)} (policy {s.policy}). Please clean up: delete what you no longer need, or back up "
        "and reset the volume from the hub's home page. Nothing is refused, but operators see it."
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None
