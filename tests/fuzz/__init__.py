"""Fuzzing of every parser of untrusted input (see README.md)."""
