"""The carriers ingest can receive pushes from, and the ones it can poll."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rastro_ingest.adapters.carriers import correios, generic
from rastro_ingest.adapters.carriers.correios.client import CorreiosClient
from rastro_ingest.adapters.carriers.correios.parse import parse_tracking as parse_correios
from rastro_ingest.adapters.carriers.generic.parse import parse_tracking as parse_generic
from rastro_ingest.adapters.carriers.models import CarrierClient, Parser

__all__ = ["CARRIERS", "CarrierAdapter", "ClientFactory"]

ClientFactory = Callable[[str, Mapping[str, Any], float, Callable[[], Awaitable[None]]], CarrierClient]
"""``(base_url, credentials, timeout_s, pace) -> client``; the client awaits ``pace()`` before every
HTTP request (the carrier's token bucket), so token exchanges count against the rate limit too."""


@dataclass(frozen=True)
class CarrierAdapter:
    name: str
    parse: Parser
    client: ClientFactory | None = None
    """None: the carrier only pushes (webhooks); it cannot be polled."""
    default_base_url: str | None = None
    doc: str = ""


CARRIERS: dict[str, CarrierAdapter] = {
    "correios": CarrierAdapter(
        "correios",
        parse_correios,
        CorreiosClient,
        "https://api.correios.com.br",
        doc=(correios.__doc__ or "").strip(),
    ),
    "generic": CarrierAdapter("generic", parse_generic, doc=(generic.__doc__ or "").strip()),
}
