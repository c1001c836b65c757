"""Adversarial tests: a seeded tamper campaign against a full chain, and an attack catalogue."""
