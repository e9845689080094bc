"""dlq-replay: the dead-letter store of every Rastro service, with list, show, replay and purge."""
