"""``rastro_carrier_circuit_open{carrier}``: 1 from the failure that opens a carrier's circuit until a trial
call closes it again (the alert RastroCarrierCircuitOpen reads it)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from rastro_ingest.polling.carrier_gate import CarrierGate, RetryPolicy
from rastro_ingest.polling.circuit_breaker import CircuitBreaker
from rastro_ingest.polling.poller import export_circuit_states

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def circuit_open(carrier: str) -> float | None:
    return REGISTRY.get_sample_value("rastro_carrier_circuit_open", {"carrier": carrier})


def test_the_gauge_follows_the_breaker_through_open_half_open_and_closed() -> None:
    clock = Clock()
    down = CircuitBreaker(failure_threshold=2, reset_after_s=60, clock=clock)
    up = CircuitBreaker(failure_threshold=2, reset_after_s=60, clock=clock)
    gates = {
        "gauge-down": CarrierGate("gauge-down", down, RetryPolicy()),
        "gauge-up": CarrierGate("gauge-up", up, RetryPolicy()),
    }

    export_circuit_states(gates)
    assert (circuit_open("gauge-down"), circuit_open("gauge-up")) == (0, 0)

    down.record_failure()
    down.record_failure()
    export_circuit_states(gates)
    assert (circuit_open("gauge-down"), circuit_open("gauge-up")) == (1, 0)

    clock.now += 61  # half-open: only a trial may go out, so the carrier still counts as open
    export_circuit_states(gates)
    assert circuit_open("gauge-down") == 1

    down.record_success()
    export_circuit_states(gates)
    assert circuit_open("gauge-down") == 0
