"""Scheduled carrier polling: which shipments are due, how often, and calling carriers politely
(a token bucket per carrier, a circuit breaker per carrier, retries with backoff and jitter)."""
