"""Keep-alive has a total bound (last activity + idleTimeout + maxExtension, however many
requests), and activity reported in the future counts as now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler import culling
from reconciler.api.idlecullpolicy import IdleCullPolicySpec
from reconciler.culling import ServerView

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SPEC = IdleCullPolicySpec.model_validate({"idleTimeout": "1h", "warnBefore": "10m", "maxExtension": "2h"})


def view(last: datetime) -> ServerView:
    return ServerView("ann", "", frozenset(), NOW - timedelta(hours=5), last, None, True)


def test_keep_alive_never_past_activity_plus_timeout_plus_extension() -> None:
    last = NOW - timedelta(minutes=50)
    cap = last + timedelta(hours=3)
    # Asked again and again: each request is "now + 2 h", the deadline stops at the cap.
    for minutes_later in (0, 30, 60, 100):
        now = NOW + timedelta(minutes=minutes_later)
        until, _ = culling.keep_alive_grant(SPEC, 120, now)
        d = culling.decide(view(last), SPEC, None, until, None, now)
        assert d.entry.deadline == min(until, cap)
    assert d.entry.deadline == cap and d.entry.state == "Kept"


def test_a_short_keep_alive_is_granted_as_asked() -> None:
    until, granted = culling.keep_alive_grant(SPEC, 30, NOW)
    d = culling.decide(view(NOW - timedelta(minutes=50)), SPEC, None, until, None, NOW)
    assert granted == 30 and d.entry.deadline == NOW + timedelta(minutes=30)


def test_activity_in_the_future_counts_as_now() -> None:
    d = culling.decide(view(NOW + timedelta(days=365)), SPEC, None, None, None, NOW)
    assert d.entry.last_activity == NOW and d.entry.deadline == NOW + timedelta(hours=1)
    assert d.entry.idle_seconds == 0
