"""What every ``rastro`` command that talks to a running stack shares: the settings ``make run`` writes
to ``.rastro/demo.env``, and the one-line reading of a problem+json error."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import typer

__all__ = ["DEMO_ENV", "admin_api_key", "demo_env", "problem_message"]

DEMO_ENV = Path(".rastro") / "demo.env"


def demo_env() -> dict[str, str]:
    """``NAME=value`` lines of ``.rastro/demo.env`` (empty when ``make run`` has not written it)."""
    if not DEMO_ENV.is_file():
        return {}
    pairs = (line.split("=", 1) for line in DEMO_ENV.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def admin_api_key(given: str | None, *, option_env: str = "RASTRO_ADMIN_API_KEY") -> str:
    """The key a command acts with: ``--api-key`` (or its ``option_env``), else the operator key from
    the environment or ``.rastro/demo.env``. None anywhere: a one-line hint and exit code 2."""
    key = given or os.environ.get("RASTRO_ADMIN_API_KEY") or demo_env().get("RASTRO_ADMIN_API_KEY")
    if not key:
        typer.echo(
            f"No API key: pass --api-key or set {option_env} (make run writes .rastro/demo.env).", err=True
        )
        raise typer.Exit(2)
    return key


def problem_message(response: httpx.Response) -> str:
    """A problem+json answer's detail (or title) and its field errors; the raw text otherwise."""
    try:
        problem = response.json()
        message = str(problem.get("detail") or problem.get("title") or response.text)
        for e in problem.get("errors") or []:
            message += f"\n  {e.get('field', '?')}: {e.get('message', '')}"
    except ValueError:
        message = response.text[:300]
    return message
