"""The database settings: a transaction pooler needs a direct URL beside it; without one, nothing changes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rastro_kit.settings import KitSettings

pytestmark = pytest.mark.unit


def test_no_pooler_by_default_and_no_direct_url_needed() -> None:
    settings = KitSettings(DATABASE_URL="postgresql://rastro@db/rastro")
    assert settings.database_pooler == "none" and settings.database_direct_url is None


def test_pgbouncer_needs_the_direct_url() -> None:
    with pytest.raises(ValidationError, match="DATABASE_DIRECT_URL"):
        KitSettings(
            RASTRO_DATABASE_POOLER="pgbouncer", DATABASE_URL="postgresql://ingest@pgbouncer:6432/rastro"
        )
    settings = KitSettings(
        RASTRO_DATABASE_POOLER="pgbouncer",
        DATABASE_URL="postgresql://ingest@pgbouncer:6432/rastro",
        DATABASE_DIRECT_URL="postgresql://ingest@db:5432/rastro",
    )
    assert settings.database_direct_url == "postgresql://ingest@db:5432/rastro"


def test_unknown_poolers_are_refused() -> None:
    with pytest.raises(ValidationError):
        KitSettings(RASTRO_DATABASE_POOLER="pgcat")
