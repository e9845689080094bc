"""Composition root of dlq-replay: one consumer of every service's DLQ, the dead-letter API, the outbox
that carries replays. Nothing connects until the app's lifespan starts."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from rastro_dlq_replay import api
from rastro_dlq_replay.handlers import store_dead_letter
from rastro_dlq_replay.settings import DLQ_SOURCE_PATTERN, DlqReplaySettings
from rastro_kit.service import ConsumerSpec, Runtime, ServiceDefinition, create_app, serve

__all__ = ["build_app", "main"]

MIGRATIONS = "rastro_dlq_replay.migrations"


def _consumers(_: Runtime) -> Sequence[ConsumerSpec]:
    return [ConsumerSpec(raw_handler=store_dead_letter, topic_pattern=DLQ_SOURCE_PATTERN)]


def build_app(settings: DlqReplaySettings) -> FastAPI:
    return create_app(
        ServiceDefinition(
            settings=settings,
            title="Rastro dlq-replay",
            description="The dead letters of every Rastro service: list, show, replay and purge them.",
            migrations=(MIGRATIONS,),
            routers=[api.router],
            consumers=_consumers,
        )
    )


def main() -> None:
    settings = DlqReplaySettings()
    serve(build_app(settings), settings)
