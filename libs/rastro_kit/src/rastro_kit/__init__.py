"""Rastro's service kit: settings, logs, metrics, Postgres, Kafka consumer runner, outbox, HTTP plumbing."""
