"""Fixtures of the whole-stack tiers (e2e and chaos): the five services as processes, the gateway, a
webhook receiver. Session-scoped: one stack for every test that needs it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from rastro_cli.devstack.gateway import build_gateway, routes_for
from rastro_kit.testing import serve_app
from tests import chromium_install
from tests.e2e.stack import Receiver, Stack


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(item.path.name == "test_console_browser.py" for item in session.items):
        chromium_install.start()  # in the background: the browser tests come last


@pytest.fixture(scope="session")
def e2e_stack(
    kafka_bootstrap: str,
    database_url: str,
    kafka_idempotence: bool,
    topics: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = Stack(kafka_bootstrap, database_url, kafka_idempotence, tmp_path_factory.mktemp("e2e-logs"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
async def gateway(e2e_stack: Stack) -> AsyncIterator[str]:
    await e2e_stack.wait_ready()
    app = build_gateway(routes_for({name: s.url for name, s in e2e_stack.services.items()}))
    async with serve_app(app) as url:
        e2e_stack.gateway_url = url
        yield url


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    async with serve_app(hook.app()) as url:
        yield hook, url + "/hooks"
