"""What every ``rastro`` command that talks to a running stack shares: the settings ``make run`` writes
to ``.rastro/demo.env``, and the one-line reading of a problem+json error."""

from __future__ import annotations

from pathlib import Path

import httpx

__all__ = ["DEMO_ENV", "demo_env", "problem_message"]

DEMO_ENV = Path(".rastro") / "demo.env"


def demo_env() -> dict[str, str]:
    """``NAME=value`` lines of ``.rastro/demo.env`` (empty when ``make run`` has not written it)."""
    if not DEMO_ENV.is_file():
        return {}
    pairs = (line.split("=", 1) for line in DEMO_ENV.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


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
