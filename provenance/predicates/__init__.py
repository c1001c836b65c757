"""Predicates this project defines, each specified in ``attest/`` with a JSON Schema."""
