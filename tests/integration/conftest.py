"""Fixtures of the cross-service integration tier: the five apps in-process, shared by the session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.service_apps import ServiceApps, running_service_apps


@pytest.fixture(scope="session")
async def service_apps(
    kafka_bootstrap: str, kafka_idempotence: bool, database_url: str, topics: list[str]
) -> AsyncIterator[ServiceApps]:
    async with running_service_apps(kafka_bootstrap, kafka_idempotence, database_url) as apps:
        yield apps
