"""What a controller raises: temporary errors are retried with backoff, permanent ones are not."""

from __future__ import annotations


class ReconcileError(Exception):
    """Base of the errors a controller may raise."""


class TemporaryError(ReconcileError):
    """The world may fix itself (engine or hub unreachable, 5xx, timeout): retry with backoff."""

    def __init__(self, message: str, delay: float | None = None):
        super().__init__(message)
        self.delay = delay  # a controller's own idea of when to retry, if it has one


class PermanentError(ReconcileError):
    """Retrying cannot help (invalid spec, unknown user): report it, wait for a new spec."""

    def __init__(self, message: str, reason: str = "Failed"):
        super().__init__(message)
        self.reason = reason
