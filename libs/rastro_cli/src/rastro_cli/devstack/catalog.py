"""Which services the dev stack runs, and on which ports (the contract with the services)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GATEWAY_PORT", "HOST", "SERVICES", "ServiceSpec", "service_url"]

HOST = "127.0.0.1"
GATEWAY_PORT = 8000


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    """Service name as in DESIGN §1 and the topic registry (``dlq-replay``)."""
    port: int

    @property
    def module(self) -> str:
        """What ``python -m`` runs: ``rastro_dlq_replay`` for ``dlq-replay``."""
        return "rastro_" + self.name.replace("-", "_")


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("ingest", 8001),
    ServiceSpec("normalization", 8002),
    ServiceSpec("eta", 8003),
    ServiceSpec("notification", 8004),
    ServiceSpec("dlq-replay", 8005),
)


def service_url(spec: ServiceSpec, host: str = HOST) -> str:
    return f"http://{host}:{spec.port}"
