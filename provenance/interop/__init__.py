"""Formats of other tools, read and written exactly: OpenSSF model signing (OMS)."""
