"""A hashing worker process: runs tasks from its parent and streams the results back.

Started by :mod:`provenance.digest.hashing` as ``python -I -c`` with the package's location on
the path; speaks :mod:`provenance.digest.protocol` on standard input and output. It opens the
stat cache read-only: only the parent records new digests.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import cast

from provenance import errors
from provenance.digest.cache import StatCache
from provenance.digest.protocol import FieldReader, encode_error, encode_results
from provenance.digest.tasks import HashConfig, TaskRunner


def main() -> int:
    """Serve tasks until the parent closes standard input."""
    reader = FieldReader(cast(io.BufferedReader, sys.stdin.buffer))
    out = sys.stdout.buffer
    try:
        config = HashConfig.from_bytes(reader.require())
        cache = None
        if config.cache_dir is not None:
            cache = StatCache(
                Path(config.cache_dir), racy_window_ns=config.racy_window_ns, read_only=True
            )
        runner = TaskRunner(config, cache)
        out.write(b"r\0")  # started: the parent sends tasks only from now on
        out.flush()
        while (task := reader.task()) is not None:
            for batch in runner.run(task):
                out.write(encode_results(batch))
            out.write(b"e\0")
            out.flush()
    except errors.Error as e:
        out.write(encode_error(e))
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
