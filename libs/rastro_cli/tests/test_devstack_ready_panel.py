"""The ready panel shows the keys meant for local use, and no database password."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from rastro_cli.devstack.ready_panel import ReadyInfo, print_ready

pytestmark = pytest.mark.unit


def _render(**overrides: object) -> str:
    info = {
        "base_url": "http://127.0.0.1:8000",
        "admin_key": "rk_admin_x",
        "demo_key": "rk_demo_y",
        "bootstrap": "127.0.0.1:19092",
        "database_url": "postgresql://postgres:s3cret@db:5432/rastro",
        "broker_note": "",
        "database_note": "",
        "logs": Path(".rastro/logs"),
        "demo_env": Path(".rastro/demo.env"),
        "tracking_number": "QB319803166BR",
    }
    info.update(overrides)
    console = Console(record=True, width=100, color_system=None)
    print_ready(console, ReadyInfo(**info))  # type: ignore[arg-type]
    return console.export_text()


def test_shows_keys_docs_and_examples_but_no_password() -> None:
    text = _render()
    assert "rk_demo_y" in text and "rk_admin_x" in text
    assert "s3cret" not in text and "postgres:***@db:5432/rastro" in text
    assert "http://127.0.0.1:8005/docs" in text
    # Each example stays on one line, however narrow the terminal, so it can be copied.
    example = next(line for line in text.splitlines() if "/v1/shipments/QB319803166BR" in line)
    assert example.strip().startswith("curl ") and example.rstrip().endswith('$RASTRO_DEMO_API_KEY"')


def test_says_when_the_demo_key_is_missing() -> None:
    assert "not created" in _render(demo_key=None)
