"""``python -m rastro_eta`` runs the service."""

from __future__ import annotations

from rastro_eta.app import main

if __name__ == "__main__":
    main()
