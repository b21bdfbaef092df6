"""What it means for a resource to be in a state, as `kubectl wait --for` asks it: used by
`hubctl wait`/`reconcile` and by the hub's wait endpoint, so both accept the same forms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .api.common import TERMINAL_PHASES

FOR_FORMS = "condition=<Type>[=True|False|Unknown], phase=<Phase>, or delete"


@dataclass(frozen=True)
class WaitFor:
    """What `--for` asks, as in kubectl wait: a condition's status, a phase, or deletion."""

    what: Literal["condition", "phase", "delete"]
    name: str = ""  # the condition's type, or the phase
    value: str = "True"  # the condition's status

    def holds(self, obj: dict[str, Any] | None) -> bool:
        """Of a resource as served (None: there is none). A condition or a phase counts only
        once the status has observed the current generation: not a status of an older spec."""
        if self.what == "delete":
            return obj is None
        if obj is None:
            return False
        status = obj.get("status") or {}
        if status.get("observedGeneration") != obj["metadata"]["generation"]:
            return False
        if self.what == "phase":
            return (status.get("phase") or "").lower() == self.name.lower()
        return any(
            c.get("type", "").lower() == self.name.lower() and c.get("status") == self.value
            for c in status.get("conditions") or []
        )

    def never(self, obj: dict[str, Any] | None) -> str | None:
        """Why it can no longer hold, or None while it still may: a one-shot that has finished
        (Succeeded, Failed, Completed) for its current spec is never reconciled again, so a
        phase or condition it does not have by then never comes. Deletion may still come."""
        if self.what == "delete" or obj is None or self.holds(obj):
            return None
        status = obj.get("status") or {}
        phase = status.get("phase")
        if phase not in TERMINAL_PHASES or status.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        why = next(
            (
                f" ({c['reason']}: {c['message']})" if c.get("message") else f" ({c['reason']})"
                for c in status.get("conditions") or []
                if c.get("type") == "Ready" and c.get("status") == "False" and c.get("reason")
            ),
            "",
        )
        return f"it ended {phase}{why}, so {self} will not hold"

    def __str__(self) -> str:
        if self.what == "condition":
            return f"condition={self.name}" + ("" if self.value == "True" else f"={self.value}")
        return "delete" if self.what == "delete" else f"phase={self.name}"


def parse_for(text: str) -> WaitFor:
    """`condition=Ready`, `condition=Ready=False`, `phase=Completed`, `delete`; ValueError else."""
    what, _, rest = text.strip().partition("=")
    if what == "delete" and not rest:
        return WaitFor("delete")
    if what == "phase" and rest and "=" not in rest:
        return WaitFor("phase", rest)
    if what == "condition" and rest:
        name, sep, value = rest.partition("=")
        value = {"true": "True", "false": "False", "unknown": "Unknown"}.get(value.lower() if sep else "true", "")
        if name and value:
            return WaitFor("condition", name, value)
    raise ValueError(f"bad --for {text!r}: use {FOR_FORMS}")


def handled(status: dict[str, Any], requested: str) -> bool:
    """The status answers the "reconcile now" of `requested` (or a later one)."""
    at = status.get("lastHandledReconcileAt")
    if not at or at == requested:
        return bool(at)
    try:
        return datetime.fromisoformat(at) >= datetime.fromisoformat(requested)
    except ValueError:
        return False
