"""Write the sanitised copy of a screened dataset: the same files, less the flagged samples.

The copy has the layout and formats of the original: a sample file (image folders) is left
out, a table or array file is rewritten without its flagged rows (CSV through the csv module,
Parquet through pyarrow, ``.npy``/``.npz`` along the first axis, other arrays in an ``.npz``
kept as they are), and every other file is copied byte for byte. Every byte read comes
through the hash-on-read handle, so the copy derives from exactly the screened bytes. It is
written to a temporary directory beside ``out`` and renamed into place at the end, so a
failed run leaves nothing behind; an existing ``out`` is never overwritten.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from provenance.errors import UsageError
from provenance.fsutil import atomic_write

if TYPE_CHECKING:
    from provenance.guard.dataset import VerifiedDataset
    from provenance.screen.samples import Samples
    from provenance.screen.schema import Schema


def _rewrite(path: str, data: bytes, drop: set[int], schema: Schema) -> bytes:
    """``data`` (the file ``path``) without the rows ``drop``."""
    lowered = path.lower()
    if lowered.endswith(".csv"):
        from provenance.screen.tables import csv_rows

        header, rows = csv_rows(data, path)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(row for i, row in enumerate(rows) if i not in drop)
        return out.getvalue().encode("utf-8")
    if lowered.endswith(".parquet"):
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        from provenance.screen.tables import read_parquet

        table = read_parquet(data, path)
        kept = table.take(pa.array([i for i in range(table.num_rows) if i not in drop]))
        sink = pa.BufferOutputStream()
        pq.write_table(kept, sink)
        return bytes(sink.getvalue().to_pybytes())
    import numpy as np

    from provenance.screen.arrays import load_array

    loaded = load_array(data, path)
    buffer = io.BytesIO()
    if isinstance(loaded, dict):
        length = len(loaded[schema.npz_features])
        keep = np.array([i not in drop for i in range(length)], dtype=bool)
        filtered = {
            name: array[keep]
            if name in (schema.npz_features, schema.npz_labels) and array.shape[:1] == (length,)
            else array
            for name, array in loaded.items()
        }
        np.savez(buffer, allow_pickle=False, **filtered)
    else:
        keep = np.array([i not in drop for i in range(len(loaded))], dtype=bool)
        np.save(buffer, loaded[keep], allow_pickle=False)
    return buffer.getvalue()


def write_sanitized(
    handle: VerifiedDataset, samples: Samples, schema: Schema, remove: Iterable[int], out: Path
) -> int:
    """Write the copy of the dataset without the samples ``remove``; return how many were
    left out."""
    removed = sorted(set(remove))
    if os.path.lexists(out):
        raise UsageError(f"{out} already exists", hint="--sanitize writes a new path")
    rows: dict[str, set[int]] = defaultdict(set)
    dropped_files: set[str] = set()
    for i in removed:
        if samples.rows[i] < 0:
            dropped_files.add(samples.files[i])
        else:
            rows[samples.files[i]].add(samples.rows[i])
    if handle.root.is_file():
        (name,) = handle.files
        data = handle.read_bytes(name)
        atomic_write(out, _rewrite(name, data, rows[name], schema) if rows[name] else data)
        return len(removed)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for path in handle.files:
            if path in dropped_files:
                continue
            data = handle.read_bytes(path)
            if rows.get(path):
                data = _rewrite(path, data, rows[path], schema)
            target = temporary / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        os.chmod(temporary, 0o755)  # noqa: S103 - a dataset directory, as mkdir would make it
        moved = not os.path.lexists(out)
        if moved:
            os.rename(temporary, out)
    finally:
        if os.path.lexists(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
    if not moved:
        raise UsageError(f"{out} appeared while the copy was written")
    return len(removed)
