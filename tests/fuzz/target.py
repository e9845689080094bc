"""What the fuzzer aims at: the e2e stack's services and the fuzzer's own tenant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["FuzzTarget"]


@dataclass(frozen=True)
class FuzzTarget:
    urls: dict[str, str]  # service name (as in schemas/openapi/<name>.json) -> base URL
    tenant: str
    tenant_key: str  # every scope, the fuzzer's tenant only
    admin_key: str  # the operator key: cases using it are pinned to ``tenant``
    logs: dict[str, tuple[Path, int]]  # service -> its log, and the log's size when fuzzing began

    def crashes(self) -> list[str]:
        """Log lines since fuzzing began of a request that failed (a 500) or a background loop that
        crashed: a bad value stored through the API can break a loop without any 5xx answer."""
        found = []
        for service, (path, start) in self.logs.items():
            with path.open("rb") as log:
                log.seek(start)
                found += [f"{service}: {line[:400]!r}" for line in log if any(m in line for m in _CRASHES)]
        return found


_CRASHES = (b'"event": "task_crashed"', b"Exception in ASGI application")
