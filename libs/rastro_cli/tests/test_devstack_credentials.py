"""The admin key is made once and kept; env files are private NAME=value lines."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rastro_cli.devstack.credentials import load_or_create_admin_key, write_env_file

pytestmark = pytest.mark.unit


def test_the_admin_key_is_created_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / ".rastro" / "admin.key"
    key = load_or_create_admin_key(path)
    assert key.startswith("rk_admin_") and len(key) == len("rk_admin_") + 32 and key.isascii()
    assert key[len("rk_admin_") :].isalnum()
    assert load_or_create_admin_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_env_file_is_sourceable_name_value_lines(tmp_path: Path) -> None:
    path = tmp_path / "demo.env"
    write_env_file(
        path, {"RASTRO_DEMO_API_KEY": "rk_x", "DATABASE_URL": "postgresql://postgres@/rastro?host=/s"}
    )
    assert (
        path.read_text() == "RASTRO_DEMO_API_KEY=rk_x\nDATABASE_URL=postgresql://postgres@/rastro?host=/s\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
