"""A ``DeadLetterFilter`` as a SQL condition with numbered parameters (values never enter the SQL)."""

from __future__ import annotations

from typing import Any

from rastro_dlq_replay.domain.query import Cursor, DeadLetterFilter, GroupBy

__all__ = ["GROUP_COLUMNS", "SqlCondition", "condition_for"]

GROUP_COLUMNS = {GroupBy.REASON: "reason", GroupBy.SERVICE: "service", GroupBy.TENANT: "tenant"}
# Free text is looked for in what people search by; chr(31) keeps a match from spanning two columns.
_SEARCHED = (
    "lower(concat_ws(chr(31), error_message, subject, event_type, event_id, key_text, original_topic))"
)


class SqlCondition:
    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, template: str, *values: Any) -> None:
        """``template`` names its parameters ``{0}``, ``{1}`` …; they become ``$n`` placeholders."""
        placeholders = []
        for value in values:
            self.args.append(value)
            placeholders.append(f"${len(self.args)}")
        self.clauses.append(template.format(*placeholders))

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "TRUE"


def condition_for(selection: DeadLetterFilter, after: Cursor | None = None) -> SqlCondition:
    cond = SqlCondition()
    cond.add("status = ANY({0}::text[])", [str(s) for s in selection.statuses])
    if selection.service is not None:
        cond.add("service = {0}", selection.service)
    if selection.reason is not None:
        cond.add("reason = {0}", selection.reason)
    if selection.tenant is not None:
        cond.add("tenant = {0}", selection.tenant)
    if selection.event_type is not None:
        cond.add("event_type = {0}", selection.event_type)
    if selection.since is not None:
        cond.add("last_failed_at >= {0}", selection.since)
    if selection.until is not None:
        cond.add("last_failed_at < {0}", selection.until)
    if selection.text:
        cond.add(f"strpos({_SEARCHED}, lower({{0}})) > 0", selection.text)
    if after is not None:
        cond.add("(last_failed_at, id) < ({0}, {1})", after.last_failed_at, after.id)
    return cond
