"""``rastro privacy rotate-master-key`` and ``shred-tenant`` against stand-in services (in memory): what
each sends every area, and what the operator is told."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from rastro_cli.main import app

pytestmark = pytest.mark.unit
ENV = {"RASTRO_BASE_URL": "http://gateway", "RASTRO_ADMIN_API_KEY": "rk_admin_test", "COLUMNS": "200"}


def stand_in(monkeypatch: pytest.MonkeyPatch, remaining: dict[str, int]) -> list[tuple[str, Any]]:
    sent: list[tuple[str, Any]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append((request.url.path, body))
        area = request.url.path.split("/")[3]
        if request.url.path.endswith("/rewrap-keys"):
            counts = {"rewrapped": 3, "unreadable": 0, "remaining": remaining[area], "index_keys_created": 0}
            return httpx.Response(200, json={"service": area, "kek_id": "00ff", **counts})
        return httpx.Response(200, json={"service": area, "tenant": body["tenant"], "keys_destroyed": 2})

    real = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real(transport=httpx.MockTransport(handle), **kw))
    return sent


def test_rotate_master_key_says_when_the_old_key_can_go(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = stand_in(monkeypatch, {"notification": 0, "dead-letters": 0})
    result = CliRunner().invoke(app, ["privacy", "rotate-master-key", "--batch", "50"], env=ENV)
    assert result.exit_code == 0, result.output
    assert [path for path, _ in sent] == [
        "/v1/privacy/notification/rewrap-keys",
        "/v1/privacy/dead-letters/rewrap-keys",
    ]
    assert sent[0][1] == {"batch": 50}
    assert "notification: 3 re-wrapped, 0 remaining" in result.output
    assert "can be removed from RASTRO_MASTER_KEY_PREVIOUS" in result.output


def test_rotate_master_key_fails_while_keys_remain(monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in(monkeypatch, {"notification": 0, "dead-letters": 4})
    result = CliRunner().invoke(app, ["privacy", "rotate-master-key"], env=ENV)
    assert result.exit_code == 1
    assert "dead-letters: 3 re-wrapped, 4 remaining" in result.output
    assert "can be removed" not in result.output


def test_shred_tenant_needs_yes_and_sends_the_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = stand_in(monkeypatch, {})
    refused = CliRunner().invoke(app, ["privacy", "shred-tenant", "--tenant", "acme"], env=ENV)
    assert refused.exit_code == 2 and not sent
    result = CliRunner().invoke(app, ["privacy", "shred-tenant", "--tenant", "acme", "--yes"], env=ENV)
    assert result.exit_code == 0, result.output
    assert [body for _, body in sent] == [{"tenant": "acme", "confirm": "acme"}] * 2
    assert json.loads(result.output)["dead-letters"]["keys_destroyed"] == 2
