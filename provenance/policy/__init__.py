"""Policies: declarative YAML saying who is trusted to attest what, and under which conditions."""
