"""Correios SRO Rastro REST payloads -> raw tracking events. Pure: no I/O.

The shape (``GET /srorastro/v1/objetos?codigosObjetos=…&resultado=T``, and pushes in the same shape)::

    {"versao": "1.0.0", "quantidade": 1, "tipoResultado": "Todos os eventos",
     "objetos": [{
        "codObjeto": "AA123456785BR",
        "tipoPostal": {"sigla": "AA", "descricao": "ETIQUETA LOGICA SEDEX", "categoria": "SEDEX"},
        "dtPrevista": "2026-11-25T23:59:59",
        "eventos": [{                                   # newest first
            "codigo": "BDE", "tipo": "01",              # -> status_code "BDE-01"
            "dtHrCriado": "2026-11-23T14:05:11",        # local time, no offset
            "descricao": "Objeto entregue ao destinatário",
            "detalhe": "…",                             # optional
            "unidade": {"tipo": "Unidade de Distribuição",
                        "endereco": {"cidade": "SAO PAULO", "uf": "SP"}},
            "unidadeDestino": {…}                       # transfers only (RO, DO)
        }]},
        {"codObjeto": "XX000000000BR",
         "mensagem": "SRO-020: Objeto não encontrado na base de dados dos Correios."}]}

``dtHrCriado`` carries no offset: it is the local time of the unit's state. Brazil has had no daylight
saving time since 2019, so each state (``uf``) has one fixed offset; unknown states get -03:00.
Each event's ``raw`` keeps the object's own fields (without the other events) and the event untouched.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError

from rastro_events import Location, RawTrackingEvent
from rastro_ingest.adapters.carriers.models import CarrierMessage, ParsedShipment, ParseSettings

__all__ = ["DELIVERED_CODES", "parse_tracking"]

DELIVERED_CODES = frozenset({"BDE-00", "BDE-01", "BDI-00", "BDI-01", "BDR-00", "BDR-01"})
_BRASILIA = timezone(timedelta(hours=-3))
_OFFSETS = {
    "AC": timezone(timedelta(hours=-5)),
    **dict.fromkeys(("AM", "RR", "RO", "MT", "MS"), timezone(timedelta(hours=-4))),
}


def parse_tracking(
    payload: Any, settings: ParseSettings
) -> tuple[list[ParsedShipment], list[CarrierMessage]]:
    objects = payload.get("objetos") if isinstance(payload, dict) else None
    if not isinstance(objects, list):
        return [], [CarrierMessage("invalid_payload", "expected an object with an `objetos` array")]
    shipments: list[ParsedShipment] = []
    messages: list[CarrierMessage] = []
    for obj in objects:
        shipment, found = _parse_object(obj, settings)
        messages.extend(found)
        if shipment is not None:
            shipments.append(shipment)
    return shipments, messages


def _parse_object(obj: Any, settings: ParseSettings) -> tuple[ParsedShipment | None, list[CarrierMessage]]:
    number = obj.get("codObjeto") if isinstance(obj, dict) else None
    if not isinstance(number, str) or not number.strip():
        return None, [CarrierMessage("invalid_object", "an object without `codObjeto`")]
    number = number.strip().upper()
    if "mensagem" in obj and not obj.get("eventos"):
        code = str(obj["mensagem"]).split(":", 1)[0].strip() or "carrier_message"
        return ParsedShipment(number), [CarrierMessage(code, str(obj["mensagem"]), number)]
    header = {k: v for k, v in obj.items() if k != "eventos"}
    events: list[RawTrackingEvent] = []
    messages: list[CarrierMessage] = []
    for i, raw_event in enumerate(obj.get("eventos") or []):
        try:
            events.append(_event(number, header, raw_event, settings))
        except (ValidationError, KeyError, ValueError, TypeError, AttributeError) as exc:
            messages.append(CarrierMessage("invalid_event", f"eventos[{i}]: {_reason(exc)}", number))
    events.sort(key=lambda e: e.occurred_at)
    delivered = any(e.status_code in DELIVERED_CODES for e in events)
    return ParsedShipment(number, events, delivered), messages


def _event(
    number: str, header: dict[str, Any], ev: dict[str, Any], settings: ParseSettings
) -> RawTrackingEvent:
    address = ((ev.get("unidade") or {}).get("endereco")) or {}
    state = _text(address.get("uf"))
    tipo_postal = header.get("tipoPostal") or {}
    return RawTrackingEvent(
        tracking_number=number,
        carrier=settings.carrier,
        service=_text(tipo_postal.get("categoria")) or _text(tipo_postal.get("descricao")),
        status_code=f"{str(ev['codigo']).strip().upper()}-{str(ev['tipo']).strip().zfill(2)}",
        description=_text(ev.get("descricao")),
        occurred_at=_local_time(str(ev["dtHrCriado"]), state),
        location=Location(city=_text(address.get("cidade")), state=state, country="BR") if address else None,
        raw={**header, "evento": ev},
    )


def _local_time(value: str, state: str | None) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_OFFSETS.get((state or "").upper(), _BRASILIA))
    return moment


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    return str(exc) or type(exc).__name__
