"""The console's settings (``RASTRO_CONSOLE_*``); every default works in ``make run``."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConsoleSettings"]


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RASTRO_CONSOLE_", extra="ignore")

    secret: SecretStr | None = Field(
        default=None,
        description="signs session cookies and CSRF tokens; default: random per process",
    )
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="a sign-in lasts this long")
    max_sessions: int = Field(default=10_000, ge=1, description="oldest sessions are dropped beyond this")
    poll_seconds: float = Field(default=3.0, ge=0.5, le=300, description="how often live panels refresh")
    upstream_timeout_s: float = Field(default=10.0, gt=0, description="per call to a service")
    health_window_s: float = Field(
        default=300.0, gt=0, description="API availability and webhook success are rates over this window"
    )
