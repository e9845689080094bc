"""Which people a dead letter's value is about: the blind indexes (``rastro_kit.personal_data``) of every
e-mail, phone and document field of the JSON value (``recipient.email`` and the like), so a
data-subject request finds the dead letters without decrypting the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from rastro_kit.personal_data import blind_index

__all__ = ["NO_TENANT", "VALUE_AAD", "identifiers", "personal_indexes"]

NO_TENANT = "_none"  # the data-key owner of dead letters whose tenant is unknown
VALUE_AAD = "dead_letters.value"
_KINDS = {"email": "email", "phone": "phone", "document": "document", "cpf": "document", "cnpj": "document"}


def identifiers(value: Any) -> Iterator[tuple[str, str]]:
    """``(kind, value)`` of each identifying field (e-mail, phone, document) anywhere in decoded JSON."""
    if isinstance(value, dict):
        for k, v in value.items():
            name = str(k).lower()
            if isinstance(v, str) and name in _KINDS and v.strip():
                yield _KINDS[name], v
            else:
                yield from identifiers(v)
    elif isinstance(value, list):
        for v in value:
            yield from identifiers(v)


async def personal_indexes(conn: Any, tenant: str, raw: bytes | None) -> list[str]:
    if not raw:
        return []
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    found = set()
    for kind, value in identifiers(decoded):
        try:
            found.add(await blind_index(conn, tenant, kind, value))
        except ValueError:
            continue
    return sorted(found)
