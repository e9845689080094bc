"""How an endpoint's health moves after each attempt: the circuit breaker and the auto-disable rule.

Circuit breaker (per subscription). ``failure_threshold`` retryable failures in a row (no answer,
408/409/425/429, 5xx) open the circuit: the endpoint's messages are parked — not attempted, and their
retry schedules do not advance — until ``circuit_open_until``. The breaker then lets one probe through
(half-open: a cap of one delivery in flight); a success closes it, a failure opens it again for twice
as long (``open_s`` doubling up to ``max_open_s``). Any answer that is not a retryable failure (2xx, or
a 4xx that fails only that message) shows the endpoint is alive and closes the circuit.

Auto-disable. ``failing_since`` is when the current streak of undelivered attempts began (a delivery
ends it). An attempt that fails while the streak is older than ``disable_after_s`` disables the
subscription (reason ``failing_continuously``), and so does a ``410 Gone`` at once
(``endpoint_gone``). Either way the owner is told (the caller emits the event and the e-mail).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rastro_notification.domain.delivery import Outcome

__all__ = ["BreakerPolicy", "EndpointHealth", "HealthChange", "after_endpoint_attempt"]

FAILING_CONTINUOUSLY = "failing_continuously"
ENDPOINT_GONE = "endpoint_gone"


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    open_s: float = 30.0
    max_open_s: float = 900.0
    disable_after_s: float = 5 * 24 * 3600.0

    def open_for(self, consecutive_failures: int) -> float:
        """Seconds the circuit stays open after ``consecutive_failures`` (≥ the threshold)."""
        doublings = min(max(consecutive_failures - self.failure_threshold, 0), 30)
        return float(min(self.open_s * 2**doublings, self.max_open_s))


@dataclass(frozen=True)
class EndpointHealth:
    enabled: bool
    failing_since: datetime | None = None
    consecutive_failures: int = 0
    circuit_open_until: datetime | None = None
    disabled_reason: str | None = None

    def circuit_open(self, now: datetime) -> bool:
        return self.circuit_open_until is not None and self.circuit_open_until > now


@dataclass(frozen=True)
class HealthChange:
    health: EndpointHealth
    disabled_now: bool = False  # this attempt disabled the subscription: tell the owner
    circuit_opened: bool = False


def after_endpoint_attempt(
    health: EndpointHealth, outcome: Outcome, attempted_at: datetime, policy: BreakerPolicy
) -> HealthChange:
    if outcome is Outcome.DELIVERED:
        return HealthChange(EndpointHealth(enabled=health.enabled, disabled_reason=health.disabled_reason))
    failing_since = health.failing_since or attempted_at
    if outcome is Outcome.RETRY:
        failures = health.consecutive_failures + 1
        open_until = health.circuit_open_until
        opened = failures >= policy.failure_threshold
        if opened:
            open_until = attempted_at + timedelta(seconds=policy.open_for(failures))
        new = replace(
            health, failing_since=failing_since, consecutive_failures=failures, circuit_open_until=open_until
        )
    else:  # answered: alive, even if it failed this message (or went away: disabled below)
        new = replace(health, failing_since=failing_since, consecutive_failures=0, circuit_open_until=None)
        opened = False
    reason = None
    if outcome is Outcome.ENDPOINT_GONE:
        reason = ENDPOINT_GONE
    elif attempted_at - failing_since >= timedelta(seconds=policy.disable_after_s):
        reason = FAILING_CONTINUOUSLY
    if reason is not None and health.enabled:
        return HealthChange(replace(new, enabled=False, disabled_reason=reason), disabled_now=True)
    return HealthChange(new, circuit_opened=opened and not health.circuit_open(attempted_at))
