"""Rastro ETA: learns per-tenant lane transit times from deliveries and predicts delivery dates."""
