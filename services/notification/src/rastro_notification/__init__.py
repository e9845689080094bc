"""Rastro's notification service: subscriptions, signed webhooks, durable retries (DESIGN §7)."""
