"""Logging set-up for the CLI: one line per message on stderr, quiet by default.

Library modules log through ``logging.getLogger(__name__)`` and never configure handlers; only
the CLI calls :func:`configure`, so embedding applications keep control of their own logging.
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "provenance: %(levelname)s: %(message)s"


def configure(*, verbosity: int = 0, debug: bool = False) -> None:
    """Send ``provenance.*`` log records to stderr at a level chosen by the flags."""
    if debug:
        level = logging.DEBUG
    elif verbosity > 0:
        level = logging.INFO
    else:
        level = logging.WARNING
    logger = logging.getLogger("provenance")
    for handler in list(logger.handlers):
        if getattr(handler, "_provenance_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler._provenance_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
