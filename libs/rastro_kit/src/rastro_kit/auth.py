"""API keys: what a key may do, and how every service learns about keys without reading ingest's tables.

Ingest owns keys and publishes each change (hash, tenant, scopes, revoked) to the compacted topic
``rastro.auth.keys.v1``; every other service keeps a ``KeyDirectory`` fed from it. Keys are random
(190 bits), so a plain SHA-256 is a safe hash; the key itself is never stored or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from rastro_events import ApiKeyRecord, EventDecodeError, decode_event
from rastro_events.topics import AUTH_KEYS
from rastro_kit.logs import get_logger
from rastro_kit.roles import SCOPES, effective_scopes, grants

__all__ = [
    "SCOPES",
    "Authenticator",
    "KeyDirectory",
    "KeyResolver",
    "Principal",
    "generate_api_key",
    "hash_key",
]

log = get_logger(__name__)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_api_key(environment: str = "production") -> str:
    env = "live" if environment == "production" else "test"
    return f"rk_{env}_{secrets.token_urlsafe(24)}"


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant_id: str | None  # None: an operator key that sees every tenant
    scopes: frozenset[str]
    environment: str = "production"
    role: str | None = None  # docs/roles.md; ``scopes`` are already the role's when it is set
    tenants: frozenset[str] = frozenset()  # further tenants a 3PL key may act for, beside its own

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None

    def can(self, scope: str) -> bool:
        return self.is_operator or grants(self.scopes, scope)

    def acts_for(self, tenant_id: str) -> bool:
        return self.is_operator or tenant_id == self.tenant_id or tenant_id in self.tenants


class KeyResolver(Protocol):
    async def resolve(self, key_hash: str) -> Principal | None: ...


def principal_from_record(record: ApiKeyRecord, now: datetime | None = None) -> Principal | None:
    if record.revoked:
        return None
    if record.expires_at is not None and record.expires_at <= (now or datetime.now(UTC)):
        return None
    return Principal(
        record.key_id,
        record.tenant_id,
        effective_scopes(record.role, record.scopes),
        record.environment,
        role=record.role,
        tenants=frozenset(record.tenants),
    )


class KeyDirectory:
    """An in-memory copy of ``rastro.auth.keys.v1``, read from the beginning by every instance."""

    def __init__(self, consumer_factory: Callable[..., AIOKafkaConsumer], topic: str = AUTH_KEYS) -> None:
        self._factory, self._topic = consumer_factory, topic
        self._by_hash: dict[str, ApiKeyRecord] = {}
        self._hash_by_id: dict[str, str] = {}
        self.caught_up = asyncio.Event()
        self._stopping = False

    async def resolve(self, key_hash: str) -> Principal | None:
        record = self._by_hash.get(key_hash)
        return principal_from_record(record) if record else None

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        consumer = self._factory(group_id=None)
        await consumer.start()
        try:
            partitions = await self._wait_for_partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            if all(v == 0 for v in end.values()):
                self.caught_up.set()
            while not self._stopping:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self._apply(record.value)
                if not self.caught_up.is_set() and all(
                    await asyncio.gather(*(self._reached(consumer, tp, off) for tp, off in end.items()))
                ):
                    self.caught_up.set()
        finally:
            await consumer.stop()

    async def _wait_for_partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        while True:
            await consumer.topics()
            parts = consumer.partitions_for_topic(self._topic)
            if parts:
                return [TopicPartition(self._topic, p) for p in sorted(parts)]
            await asyncio.sleep(1.0)

    @staticmethod
    async def _reached(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> bool:
        return bool(await consumer.position(tp) >= offset)

    def _apply(self, value: bytes | None) -> None:
        try:
            _, payload = decode_event(value, frozenset({ApiKeyRecord.ce_type()}))
        except EventDecodeError as exc:
            log.warning("auth_key_record_unreadable", error=str(exc))
            return
        assert isinstance(payload, ApiKeyRecord)
        old = self._hash_by_id.get(payload.key_id)
        if old and old != payload.key_hash:
            self._by_hash.pop(old, None)
        self._by_hash[payload.key_hash] = payload
        self._hash_by_id[payload.key_id] = payload.key_hash


class Authenticator:
    """Turns an ``Authorization: Bearer …`` header into a principal, or None."""

    def __init__(self, resolver: KeyResolver, admin_key: SecretStr | None) -> None:
        self._resolver = resolver
        self._admin_hash = hash_key(admin_key.get_secret_value()) if admin_key else None

    async def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hash_key(token)
        if self._admin_hash and hmac.compare_digest(digest, self._admin_hash):
            return Principal("operator", None, frozenset({"admin"}), "production")
        return await self._resolver.resolve(digest)


class NoKeys:
    """A resolver that knows no keys (only the operator key works)."""

    async def resolve(self, key_hash: str) -> Principal | None:
        return None
