"""Correios (Brazil): SRO Rastro REST tracking, pushes in the same shape, and a polling client."""
