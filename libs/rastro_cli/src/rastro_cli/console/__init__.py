"""The operators' web console, served by the dev gateway at ``/console`` (docs/console.md).

Server-rendered Jinja2 pages made live with htmx (vendored in ``static/``); charts drawn as SVG with
matplotlib. Nothing here connects anything at import time.
"""

from __future__ import annotations

from rastro_cli.console.app import build_console

__all__ = ["build_console"]
