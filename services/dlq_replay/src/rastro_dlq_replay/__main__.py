from __future__ import annotations

from rastro_dlq_replay.app import main

main()
