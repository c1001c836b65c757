"""``python -m provenance``: the same entry point as the ``provenance`` console script."""

from provenance.cli import entry_point

entry_point()
