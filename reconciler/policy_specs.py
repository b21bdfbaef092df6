"""Spec models of the standing policies over servers (idle culling).

Kept apart from `resources` (the envelopes and the registry) so that each policy's fields
and rules read on their own.
"""

from __future__ import annotations

from pydantic import Field, StrictBool, field_validator, model_validator

from .fields import Duration, DurationOrZero, GroupName, SpecModel, Username, unique


class ServerSelector(SpecModel):
    """Whose servers a policy covers: members of any listed group, and the listed users."""

    users: list[Username] = []
    groups: list[GroupName] = []

    @field_validator("users", "groups")
    @classmethod
    def _unique_lists(cls, value: list[str]) -> list[str]:
        return unique(value)

    @model_validator(mode="after")
    def _not_empty(self) -> ServerSelector:
        if not self.users and not self.groups:
            raise ValueError("must list users or groups (omit selector to cover everyone)")
        return self

    def matches(self, user: str, groups: set[str] | frozenset[str]) -> bool:
        return user in self.users or bool(groups.intersection(self.groups))


class IdleCullPolicySpec(SpecModel):
    selector: ServerSelector | None = None  # None: every user
    idle_timeout: Duration = Field(alias="idleTimeout")
    max_age: DurationOrZero = Field(0, alias="maxAge")  # 0: no age limit
    warn_before: DurationOrZero = Field(600, alias="warnBefore")  # 0: no notice
    max_extension: DurationOrZero = Field(8 * 3600, alias="maxExtension")  # 0: users cannot keep servers
    priority: int = Field(0, ge=-1000, le=1000)
    dry_run: StrictBool = Field(False, alias="dryRun")
    suspend: StrictBool = False

    @model_validator(mode="after")
    def _warning_fits(self) -> IdleCullPolicySpec:
        if self.warn_before and self.warn_before >= self.idle_timeout:
            raise ValueError(
                f"warnBefore ({self.warn_before} s) must be shorter than idleTimeout ({self.idle_timeout} s)"
            )
        if self.warn_before and self.max_age and self.warn_before >= self.max_age:
            raise ValueError(f"warnBefore ({self.warn_before} s) must be shorter than maxAge ({self.max_age} s)")
        return self

    def covers(self, user: str, groups: set[str] | frozenset[str]) -> bool:
        return self.selector is None or self.selector.matches(user, groups)
