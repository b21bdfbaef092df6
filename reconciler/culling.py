"""Idle culling, decided: whose policy covers a server, when it stops, and what to do now.

Plain functions over plain inputs (the hub's server models, the policies, the keep-alive
requests, the time), in the manner of jupyterhub-idle-culler's core: the controller and the
hub's keep-alive endpoint both call them, and unit tests call them with made-up servers.

- A user covered by several policies gets the one with the highest `priority`; equal
  priorities go to the policy whose name sorts first.
- A server's deadline is its last activity plus `idleTimeout`, moved to the user's
  keep-alive time if that is later but never past last activity + `idleTimeout` +
  `maxExtension` (however often the user asks), and never after `started + maxAge`.
- Activity reported in the future (a lab's own report is the user's to forge) counts as now.
- The notice (`warnBefore` ahead) is sent once per deadline. Its own request through the
  proxy counts as activity for JupyterHub; activity up to `NOTICE_GRACE` after the notice
  is therefore not the user's, and does not move the deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .api.idlecullpolicy import CulledServer, IdleCullPolicySpec

NOTICE_GRACE = timedelta(seconds=2)
KEEP_ALIVE_KIND = "KeepAlive"  # the store's observed rows: one per user who asked to keep their servers
# An open request of these for the user: their servers are left alone (a backup with
# `consistent: true` stops and starts the server itself).
BUSY_KINDS = ("ServerRestart", "VolumeReset", "VolumeBackup", "VolumeRestore")

# A server an unfinished RolloutRestart has warned or is restarting is the rollout's to
# handle (a RolloutRestart names no one user, so its status says whose servers it holds).
ROLLOUT_HOLDS = ("Warned", "Restarting")

Action = Literal["none", "warn", "stop", "skip", "would-stop"]


def rollout_held(rollouts: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """{user: "RolloutRestart/name"} from the (name, status) of unfinished RolloutRestarts."""
    return {
        server["user"]: f"RolloutRestart/{name}"
        for name, status in rollouts
        for server in status.get("servers") or []
        if server.get("state") in ROLLOUT_HOLDS
    }


def as_utc(value: datetime | str | None) -> datetime | None:
    """An aware UTC time from the hub's REST (ISO, `Z`) or ORM (naive UTC) form."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class ServerView:
    """One active server, from the hub's user model."""

    user: str
    server: str
    groups: frozenset[str]
    started: datetime | None
    last_activity: datetime | None
    pending: str | None
    ready: bool
    url: str = ""


@dataclass(frozen=True)
class NamedPolicy:
    name: str
    spec: IdleCullPolicySpec


@dataclass
class Decision:
    server: ServerView
    entry: CulledServer
    action: Action
    wake_at: datetime | None  # when this server next needs a look (a notice, its deadline)


def servers_from_users(users: Iterable[Mapping[str, Any]]) -> list[ServerView]:
    """Every active (ready or pending) server in the hub's user models (`GET /users?state=active`)."""
    views = []
    for user in users:
        groups = frozenset(user.get("groups") or ())
        for name, server in sorted((user.get("servers") or {}).items()):
            views.append(
                ServerView(
                    user=user["name"],
                    server=name,
                    groups=groups,
                    started=as_utc(server.get("started")),
                    last_activity=as_utc(server.get("last_activity")),
                    pending=server.get("pending"),
                    ready=bool(server.get("ready")),
                    url=server.get("url") or "",
                )
            )
    return views


def winner(user: str, groups: frozenset[str] | set[str], policies: Iterable[NamedPolicy]) -> NamedPolicy | None:
    """The policy that governs `user`: the highest priority among those covering them."""
    covering = [p for p in policies if p.spec.covers(user, groups)]
    return min(covering, key=lambda p: (-p.spec.priority, p.name), default=None)


def activity(server: ServerView, previous: CulledServer | None, now: datetime) -> datetime | None:
    """The user's last activity: what the hub reports (never later than now), minus our own
    notice's request."""
    seen = server.last_activity or server.started
    if seen is not None and seen > now:
        seen = now
    if previous is None or previous.warned_at is None or seen is None:
        return seen
    if seen <= previous.warned_at + NOTICE_GRACE and previous.activity_at_warning is not None:
        return min(seen, previous.activity_at_warning)
    return seen


def bounded_keep(spec: IdleCullPolicySpec, last: datetime, keep_until: datetime | None) -> datetime | None:
    """A keep-alive holds at most `maxExtension` past the idle deadline, however often it is
    asked for (each request is "now + minutes", so without this bound it would never end)."""
    if keep_until is None:
        return None
    return min(keep_until, last + timedelta(seconds=spec.idle_timeout + spec.max_extension))


def deadline(
    spec: IdleCullPolicySpec, started: datetime | None, last: datetime, keep_until: datetime | None
) -> tuple[datetime, Literal["idle", "maxAge"]]:
    """When the server stops, and why."""
    idle = last + timedelta(seconds=spec.idle_timeout)
    keep_until = bounded_keep(spec, last, keep_until)
    if keep_until is not None and keep_until > idle:
        idle = keep_until
    if spec.max_age and started is not None:
        aged = started + timedelta(seconds=spec.max_age)
        if aged < idle:
            return aged, "maxAge"
    return idle, "idle"


def decide(
    server: ServerView,
    spec: IdleCullPolicySpec,
    previous: CulledServer | None,
    keep_until: datetime | None,
    busy: str | None,
    now: datetime,
) -> Decision:
    """What to do with one server now. `busy` says why it must be left alone, if it must."""
    last = activity(server, previous, now) or now
    keep_until = bounded_keep(spec, last, keep_until)
    due, reason = deadline(spec, server.started, last, keep_until)
    entry = CulledServer(
        user=server.user,
        server=server.server,
        last_activity=last,
        idle_seconds=max(0, int((now - last).total_seconds())),
        deadline=due,
        reason=reason,
        kept_until=keep_until if keep_until is not None and keep_until > now else None,
    )
    if previous is not None and previous.warned_for == due:  # this deadline's notice was sent
        entry.warned_at, entry.warned_for = previous.warned_at, previous.warned_for
        entry.activity_at_warning, entry.state = previous.activity_at_warning, "Warned"
    elif entry.kept_until is not None and due == entry.kept_until:
        entry.state = "Kept"
    if now >= due:
        return _due(server, spec, previous, entry, busy, now)
    warn_at = due - timedelta(seconds=spec.warn_before)
    if spec.warn_before and not spec.dry_run and entry.warned_for != due:
        if now >= warn_at:
            return Decision(server, entry, "warn", due)
        return Decision(server, entry, "none", warn_at)
    return Decision(server, entry, "none", due)


def _due(
    server: ServerView,
    spec: IdleCullPolicySpec,
    previous: CulledServer | None,
    entry: CulledServer,
    busy: str | None,
    now: datetime,
) -> Decision:
    """A server at or past its deadline: stopped, left alone for now, or (dry run) reported."""
    why = busy or (f"a {server.pending} is pending" if server.pending else None)
    if why:
        entry.state, entry.message = "Skipped", f"due, left alone: {why}"
        return Decision(server, entry, "skip", now + timedelta(seconds=5))
    if spec.dry_run:
        reported = previous is not None and previous.state == "WouldStop" and previous.deadline == entry.deadline
        entry.state, entry.message = "WouldStop", "dry run: would be stopped"
        return Decision(server, entry, "none" if reported else "would-stop", None)
    entry.state = "Stopped"
    return Decision(server, entry, "stop", None)


def notice(entry: CulledServer, now: datetime, hub_home: str) -> str:
    """The warning shown in JupyterLab: when, why, and how to keep the server."""
    assert entry.deadline is not None
    minutes = max(1, round((entry.deadline - now).total_seconds() / 60))
    why = "it reaches its maximum age" if entry.reason == "maxAge" else "it has been idle"
    keep = "" if entry.reason == "maxAge" else f" To keep it, use it or choose “Keep my server” at {hub_home}."
    return f"This server stops at {entry.deadline:%H:%M} UTC (in {minutes} min) because {why}.{keep}"


def keep_until(body: Mapping[str, Any] | None, now: datetime) -> datetime | None:
    """A user's keep-alive time from its stored record, if it is still ahead."""
    until = as_utc((body or {}).get("until"))
    return until if until is not None and until > now else None


def keep_alive_grant(spec: IdleCullPolicySpec, minutes: int, now: datetime) -> tuple[datetime, int]:
    """The time a keep-alive of `minutes` keeps servers until, capped by `maxExtension`, and
    the minutes granted."""
    granted = min(minutes * 60, spec.max_extension) // 60
    return now + timedelta(minutes=granted), granted
