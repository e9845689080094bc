"""Personal data (LGPD) in the event contract: the field annotation, the recipient models, and redaction.

A personal field is declared once, on the model, with ``PersonalData``::

    email: Annotated[str | None, PersonalData("email")] = None

The annotation lands in the JSON Schema as ``"x-personal-data": "<kind>"`` so consumers of the generated
schemas see it too. ``redact`` walks a model or any decoded JSON (a dead-letter value that never
validated, a log line's fields) and replaces personal values by ``"***"``: by the annotation where the
model is known, by field name where it is not (``PERSONAL_KEYS``). ``scrub_text`` masks what looks like
an e-mail address or a formatted CPF/CNPJ inside free text. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MASK",
    "PERSONAL_KEYS",
    "PersonalData",
    "PersonalKind",
    "Recipient",
    "RecipientAddress",
    "personal_fields",
    "redact",
    "scrub_text",
]

PersonalKind = Literal["name", "email", "phone", "document", "address"]
MASK = "***"
SCHEMA_KEY = "x-personal-data"


def PersonalData(kind: PersonalKind) -> Any:
    """Mark a field as personal data of ``kind`` (``Annotated[str | None, PersonalData("email")]``)."""
    return Field(json_schema_extra={SCHEMA_KEY: kind})


class RecipientAddress(BaseModel):
    """The street part of the delivery address. City, state and postal code stay in ``destination``
    (a ``Location``): coarse enough to be non-personal, and what the ETA lanes need."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    street: Annotated[str | None, PersonalData("address")] = Field(default=None, max_length=200)
    number: Annotated[str | None, PersonalData("address")] = Field(default=None, max_length=20)
    complement: Annotated[str | None, PersonalData("address")] = Field(default=None, max_length=100)


class Recipient(BaseModel):
    """Who receives a shipment. Every field is personal data: kept encrypted at rest, redacted in logs,
    dead-letter views and exports (docs/privacy.md)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    name: Annotated[str | None, PersonalData("name")] = Field(default=None, max_length=200)
    email: Annotated[str | None, PersonalData("email")] = Field(default=None, max_length=254)
    phone: Annotated[str | None, PersonalData("phone")] = Field(
        default=None, max_length=32, description="E.164, e.g. +5511987654321"
    )
    document: Annotated[str | None, PersonalData("document")] = Field(
        default=None, max_length=32, description="CPF or CNPJ"
    )
    address: RecipientAddress | None = None


# Field names that are personal wherever they appear in a JSON document whose model is unknown: the
# recipient object as a whole, and the identifying fields by their own names.
PERSONAL_KEYS = frozenset(
    {"recipient", "recipient_name", "email", "phone", "document", "cpf", "cnpj", "street", "address_line"}
)


def personal_fields(model: type[BaseModel]) -> dict[str, str]:
    """``{field name: kind}`` of the fields of ``model`` annotated as personal data (not nested)."""
    found = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, Mapping) and SCHEMA_KEY in extra:
            found[name] = str(extra[SCHEMA_KEY])
    return found


def redact(value: Any) -> Any:
    """A copy of ``value`` with every personal value masked: a pydantic model (by its annotations, and
    nested models by theirs), or decoded JSON (by ``PERSONAL_KEYS``). Strings elsewhere are scrubbed."""
    if isinstance(value, BaseModel):
        return _redact_model(value)
    if isinstance(value, Mapping):
        return {k: _mask_all(v) if str(k).lower() in PERSONAL_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def _redact_model(model: BaseModel) -> dict[str, Any]:
    personal = personal_fields(type(model))
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        v = getattr(model, name)
        if name in personal or name in PERSONAL_KEYS:
            out[name] = _mask_all(v.model_dump(mode="json") if isinstance(v, BaseModel) else v)
        elif isinstance(v, BaseModel):
            out[name] = _redact_model(v)
        else:
            out[name] = redact(v.model_dump(mode="json") if isinstance(v, BaseModel) else v)
    return out


def _mask_all(value: Any) -> Any:
    """Every leaf masked, the shape kept (so a reader still sees which fields were sent)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_all(v) for v in value]
    return MASK


_EMAIL = re.compile(r"[^\s@<>\"'(),;:]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_CPF = re.compile(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b")
_CNPJ = re.compile(r"\b\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}\b")
_PHONE = re.compile(r"\+\d[\d ()-]{7,18}\d")


def scrub_text(text: str) -> str:
    """Free text with e-mail addresses, formatted CPF/CNPJ and international phone numbers masked.

    A safety net for error messages and log lines; the fields themselves are redacted by ``redact``."""
    if not any(c in text for c in "@+.") or len(text) < 8:
        return text
    text = _EMAIL.sub(MASK, text)
    text = _CPF.sub(MASK, text)
    text = _CNPJ.sub(MASK, text)
    return _PHONE.sub(MASK, text)
