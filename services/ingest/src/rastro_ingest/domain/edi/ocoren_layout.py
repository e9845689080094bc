"""PROCEDA OCOREN record layouts, 3.1 (120-character records) and 5.0 (250-character records).

Positions are 1-based, as the PROCEDA manuals print them. Sources (see the fixtures README):
3.1 ``000``/``340``/``341``/``342``/``343`` as in the Intelipost "Manual OCOREN 3.1" and public parsers;
5.0 ``000``/``540``/``541``/``542``/``543``/``544``/``545``/``549`` as in the TIVIT/PROCEDA 5.0 layout.

Field kinds: ``A`` text, ``N`` digits (blank padding tolerated), ``C`` a code of exactly its width in
digits, ``D6`` DDMMAA, ``D8`` DDMMAAAA, ``T4`` HHMM. A ``required`` field may not be blank; an optional
one is checked only when it is not blank.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LAYOUTS", "Field", "Layout", "RecordSpec"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    start: int
    length: int
    kind: str = "A"
    required: bool = False

    @property
    def end(self) -> int:
        """Last 1-based position of the field."""
        return self.start + self.length - 1


@dataclass(frozen=True, slots=True)
class RecordSpec:
    ident: str
    role: str
    """header | document | carrier | occurrence | occurrence_text | occurrence_extra | trailer"""
    fields: tuple[Field, ...]

    @property
    def min_length(self) -> int:
        """A trimmed record must reach at least the end of its last required field."""
        return max((f.end for f in self.fields if f.required), default=3)


@dataclass(frozen=True, slots=True)
class Layout:
    version: str
    length: int
    records: dict[str, RecordSpec]

    @property
    def format(self) -> str:
        return f"ocoren-{self.version}"


def _header(length: int) -> RecordSpec:
    return RecordSpec(
        "000",
        "header",
        (
            Field("sender", 4, 35, required=True),
            Field("recipient", 39, 35),
            Field("date", 74, 6, "D6", required=True),
            Field("time", 80, 4, "T4", required=True),
            Field("interchange_id", 84, 12),
            Field("filler", 96, length - 95),
        ),
    )


_OCOREN_31 = Layout(
    "3.1",
    120,
    {
        "000": _header(120),
        "340": RecordSpec(
            "340", "document", (Field("document_id", 4, 14, required=True), Field("filler", 18, 103))
        ),
        "341": RecordSpec(
            "341",
            "carrier",
            (
                Field("carrier_cnpj", 4, 14, "N", required=True),
                Field("carrier_name", 18, 40),
                Field("filler", 58, 63),
            ),
        ),
        "342": RecordSpec(
            "342",
            "occurrence",
            (
                Field("issuer_cnpj", 4, 14, "N", required=True),
                Field("invoice_series", 18, 3),
                Field("invoice_number", 21, 8, "N", required=True),
                Field("occurrence_code", 29, 2, "C", required=True),
                Field("occurrence_date", 31, 8, "D8", required=True),
                Field("occurrence_time", 39, 4, "T4", required=True),
                Field("observation_code", 43, 2, "N"),
                Field("text", 45, 70),
                Field("filler", 115, 6),
            ),
        ),
        "343": RecordSpec(
            "343",
            "occurrence_extra",
            (
                Field("contractor_cnpj", 4, 14, "N"),
                Field("cte_branch", 18, 10),
                Field("cte_series", 28, 5),
                Field("cte_number", 33, 12),
                Field("filler", 45, 76),
            ),
        ),
    },
)

_OCOREN_50 = Layout(
    "5.0",
    250,
    {
        "000": _header(250),
        "540": RecordSpec(
            "540", "document", (Field("document_id", 4, 14, required=True), Field("filler", 18, 233))
        ),
        "541": RecordSpec(
            "541",
            "carrier",
            (
                Field("carrier_cnpj", 4, 14, "N", required=True),
                Field("carrier_name", 18, 50),
                Field("filler", 68, 183),
            ),
        ),
        "542": RecordSpec(
            "542",
            "occurrence",
            (
                Field("issuer_cnpj", 4, 14, "N", required=True),
                Field("invoice_series", 18, 3),
                Field("invoice_number", 21, 9, "N", required=True),
                Field("occurrence_code", 30, 3, "C", required=True),
                Field("occurrence_date", 33, 8, "D8", required=True),
                Field("occurrence_time", 41, 4, "T4", required=True),
                Field("observation_code", 45, 2, "N"),
                Field("load_list", 47, 20),
                Field("shipment_id_1", 67, 20),
                Field("shipment_id_2", 87, 20),
                Field("shipment_id_3", 107, 20),
                Field("cte_branch", 127, 10),
                Field("cte_series", 137, 5),
                Field("cte_number", 142, 12),
                Field("delivery_type", 154, 1),
                Field("issuer_company_code", 155, 5),
                Field("issuer_branch_code", 160, 5),
                Field("arrival_date", 165, 8, "D8"),
                Field("arrival_time", 173, 4, "T4"),
                Field("unloading_start_date", 177, 8, "D8"),
                Field("unloading_start_time", 185, 4, "T4"),
                Field("unloading_end_date", 189, 8, "D8"),
                Field("unloading_end_time", 197, 4, "T4"),
                Field("departure_date", 201, 8, "D8"),
                Field("departure_time", 209, 4, "T4"),
                Field("return_invoice_cnpj", 213, 14, "N"),
                Field("return_invoice_series", 227, 3),
                Field("return_invoice_number", 230, 9, "N"),
                Field("filler", 239, 12),
            ),
        ),
        "543": RecordSpec(
            "543",
            "occurrence_text",
            (
                Field("text_1", 4, 70),
                Field("text_2", 74, 70),
                Field("text_3", 144, 70),
                Field("filler", 214, 37),
            ),
        ),
        "544": RecordSpec(
            "544",
            "occurrence_extra",
            (
                Field("volumes", 4, 8, "N"),
                Field("volumes_delivered", 12, 8, "N"),
                Field("item_code", 20, 20),
                Field("item_description", 40, 50),
                Field("filler", 90, 161),
            ),
        ),
        "545": RecordSpec(
            "545",
            "occurrence_extra",
            (
                Field("contractor_cnpj", 4, 14, "N"),
                Field("cte_issuer_cnpj", 18, 14, "N"),
                Field("cte_branch", 32, 10),
                Field("cte_series", 42, 5),
                Field("cte_number", 47, 12),
                Field("filler", 59, 192),
            ),
        ),
        "549": RecordSpec(
            "549", "trailer", (Field("occurrence_count", 4, 4, "N", required=True), Field("filler", 8, 243))
        ),
    },
)

LAYOUTS: dict[str, Layout] = {"3.1": _OCOREN_31, "5.0": _OCOREN_50}
