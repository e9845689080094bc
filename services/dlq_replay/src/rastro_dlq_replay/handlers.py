"""The consumer of every service's DLQ: store each dead letter once, or fold a failed replay back into
the dead letter it came from (so a replay that fails again never becomes a second dead letter)."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from rastro_dlq_replay.adapters import repository
from rastro_dlq_replay.domain.dead_letter import DeadLetter, DlqRecord, headers_of, parse_dead_letter
from rastro_events import new_event_id
from rastro_kit.consumer import HandlerContext
from rastro_kit.logs import bind_event, get_logger

__all__ = ["store_dead_letter"]

log = get_logger(__name__)


async def store_dead_letter(ctx: HandlerContext) -> None:
    letter = parse_dead_letter(_dlq_record(ctx.record))
    bind_event(letter.event_id, letter.subject, letter.tenant, None)  # the runner unbinds after the record
    if letter.replay_id is not None:
        dead_letter_id = await repository.record_failure_after_replay(ctx.conn, letter)
        if dead_letter_id is not None:
            log.info(
                "replay_failed_again",
                dead_letter_id=dead_letter_id,
                replay_id=letter.replay_id,
                **_described(letter),
            )
            return
        log.warning("replay_id_unknown", replay_id=letter.replay_id, **_described(letter))
    dead_letter_id = new_event_id()
    if await repository.insert_dead_letter(ctx.conn, letter, dead_letter_id):
        log.info("dead_letter_stored", dead_letter_id=dead_letter_id, **_described(letter))
    else:
        log.info("dead_letter_already_stored", **_described(letter))


def _dlq_record(record: ConsumerRecord[bytes, bytes]) -> DlqRecord:
    return DlqRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        headers=headers_of(record.headers),
    )


def _described(letter: DeadLetter) -> dict[str, object]:
    return {
        "failed_service": letter.service,
        "reason": letter.reason,
        "original_topic": letter.original_topic,
        "original_partition": letter.original_partition,
        "original_offset": letter.original_offset,
    }
