"""Composition root of dlq-replay: one consumer of every service's DLQ, the dead-letter API, the replay
job worker, and the outbox that carries replays. Nothing connects until the app's lifespan starts."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from rastro_dlq_replay import api, api_bulk, api_jobs, privacy
from rastro_dlq_replay.handlers import store_dead_letter
from rastro_dlq_replay.housekeeping import retention
from rastro_dlq_replay.replay_jobs import ReplayWorker
from rastro_dlq_replay.settings import DLQ_SOURCE_PATTERN, DlqReplaySettings
from rastro_kit.personal_data import require_master_keys
from rastro_kit.retention_api import retention_router
from rastro_kit.service import ConsumerSpec, Runtime, ServiceDefinition, create_app, serve

__all__ = ["build_app", "main"]

MIGRATIONS = "rastro_dlq_replay.migrations"


def _consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    settings = runtime.settings
    assert isinstance(settings, DlqReplaySettings)
    return [
        ConsumerSpec(
            raw_handler=store_dead_letter,
            topic_pattern=DLQ_SOURCE_PATTERN,
            group_id=settings.consumer_group,
        )
    ]


async def _start_worker(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, DlqReplaySettings)
    # dead-letter values are sealed with it; refuse keys wrapped by a master key we lack (docs/privacy.md)
    await require_master_keys(settings.development, runtime.pool)
    runtime.state["replay_worker"] = ReplayWorker(runtime.pool, poll_interval_s=settings.job_poll_interval_s)


async def _run_worker(runtime: Runtime) -> None:
    worker: ReplayWorker = runtime.state["replay_worker"]
    await worker.run()


def build_app(settings: DlqReplaySettings) -> FastAPI:
    return create_app(
        ServiceDefinition(
            settings=settings,
            title="Rastro dlq-replay",
            description="The dead letters of every Rastro service: list, show, replay and purge them.",
            migrations=(MIGRATIONS,),
            # Fixed paths (audit, export, purge) before /v1/dead-letters/{id}, which would take them as ids.
            routers=[
                api_bulk.router,
                api.router,
                api_jobs.router,
                privacy.router,
                retention_router("dead-letters", "dlq-replay", {"dead_letters": settings.retention_days}),
            ],
            consumers=_consumers,
            on_start=_start_worker,
            background=[_run_worker],
            retention=(retention(settings),),
        )
    )


def main() -> None:
    settings = DlqReplaySettings()
    serve(build_app(settings), settings)
