"""Numbered SQL migrations of the dlq_replay schema (applied by rastro_kit.db.apply_migrations)."""
