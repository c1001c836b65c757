"""Reading tabular datasets (CSV, Parquet) into :class:`~provenance.screen.samples.Samples`.

Every byte comes from a hash-on-read handle, so a file that changed after it was hashed is
refused, not screened. Cells are parsed by the schema's column types; a cell that does not
parse, is out of range, is not an allowed category or is null where nulls are not allowed is
a violation of that sample (and reads as missing). A missing or undeclared column, or a
Parquet column of an incompatible type, is a violation of the dataset.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError
from provenance.screen.samples import Samples, Violation

if TYPE_CHECKING:
    from provenance.guard.dataset import VerifiedDataset
    from provenance.screen.schema import Column, Schema

TABLE_SUFFIXES = (".csv", ".parquet")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def is_table(path: str) -> bool:
    """Whether ``path`` names a table file this reader reads."""
    return path.lower().endswith(TABLE_SUFFIXES)


def csv_rows(data: bytes, what: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a UTF-8 CSV file (a byte-order mark is ignored)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{what}: not UTF-8 text") from e
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise InputError(f"{what}: not a readable CSV file ({e})") from e
    if not rows:
        raise InputError(f"{what}: an empty CSV file has no header")
    return rows[0], rows[1:]


def read_parquet(data: bytes, what: str) -> Any:
    """A pyarrow table from Parquet bytes, refusing one that expands beyond
    :func:`max_cells` (checked from the file's metadata, before anything is decoded)."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError as e:
        raise InputError(
            f"{what}: reading Parquet needs pyarrow", hint="pip install 'ml-provenance[screen]'"
        ) from e
    try:
        metadata = pq.ParquetFile(pa.BufferReader(data)).metadata
        cells = metadata.num_rows * max(metadata.num_columns, 1)
        if cells > max_cells(len(data)):
            raise InputError(
                f"{what}: {metadata.num_rows} rows of {metadata.num_columns} columns from "
                f"{len(data)} bytes is more than {max_cells(len(data))} cells",
                hint="a Parquet file that expands this much is refused as a decompression "
                "bomb; split it into smaller files, or write it as CSV",
            )
        table = pq.read_table(pa.BufferReader(data))
        # Reading checks the file's structure, not its values: a dictionary index past its
        # dictionary (a damaged or forged file) would only fail when a column is converted.
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError) as e:  # a name not UTF-8: UnicodeDecodeError
        raise InputError(f"{what}: not a readable Parquet file ({e})") from e
    return table


MIN_CELLS = 1 << 22
CELLS_PER_BYTE = 64


def max_cells(size: int) -> int:
    """How many cells (rows x columns) a Parquet file of ``size`` bytes may hold.

    Reading holds every cell as a Python object (about 100 bytes), so a file whose cells
    outnumber its bytes by far is an allocation out of proportion to the input: at most
    :data:`CELLS_PER_BYTE` per byte, and :data:`MIN_CELLS` whatever the size. A CSV file,
    at least one byte per cell, never comes near it.
    """
    return max(MIN_CELLS, CELLS_PER_BYTE * size)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    raise ValueError(text)


_PARSERS: dict[str, Any] = {
    "int": lambda text: int(text.strip()),
    "float": lambda text: float(text.strip()),
    "bool": _parse_bool,
}
_EXPECTED = {"int": "an integer", "float": "a number", "bool": "true or false"}


def _parse_cell(text: str, column: Column) -> tuple[Any, str | None]:
    """(value, problem) for a CSV cell that is not null."""
    parser = _PARSERS.get(column.type)
    if parser is None:
        return text, None
    try:
        value = parser(text)
    except ValueError:
        return None, f"{column.name}: {text[:40]!r} is not {_EXPECTED[column.type]}"
    try:
        float(value)  # the feature matrix holds floats
    except OverflowError:
        return None, f"{column.name}: {text[:40]!r} is beyond the range of a number"
    return value, None


def _check_value(value: Any, column: Column) -> str | None:
    """What is wrong with a parsed, non-null value, if anything."""
    if column.type in ("int", "float"):
        if isinstance(value, float) and not math.isfinite(value):
            return f"{column.name}: {value} is not finite"
        if column.min is not None and value < column.min:
            return f"{column.name}: {value} is below min {column.min:g}"
        if column.max is not None and value > column.max:
            return f"{column.name}: {value} is above max {column.max:g}"
    if column.type == "category" and column.values is not None and str(value) not in column.values:
        return f"{column.name}: {str(value)[:40]!r} is not an allowed category"
    return None


_ARROW_KINDS = {
    "int": ("is_integer",),
    "float": ("is_floating", "is_integer"),
    "bool": ("is_boolean",),
    "category": ("is_string", "is_large_string", "is_dictionary", "is_integer"),
    "string": ("is_string", "is_large_string", "is_dictionary"),
}


def _arrow_compatible(arrow_type: Any, column: Column) -> bool:
    import pyarrow.types as pat  # type: ignore[import-untyped]

    return any(getattr(pat, test)(arrow_type) for test in _ARROW_KINDS[column.type])


def _csv_file_rows(
    data: bytes, what: str, path: str, schema: Schema, problems: list[str]
) -> Iterator[tuple[dict[str, Any], list[str]]]:
    declared = {c.name: c for c in schema.columns}
    header, rows = csv_rows(data, what)
    _header_problems(path, header, schema, problems)
    for row in rows:
        values: dict[str, Any] = {}
        issues: list[str] = []
        if len(row) != len(header):
            issues.append(f"row has {len(row)} fields, the header {len(header)}")
        for name, cell in zip(header, row, strict=False):
            column = declared.get(name)
            if column is None:
                values[name] = cell
            elif cell in schema.null_values:
                values[name] = None
            else:
                values[name], issue = _parse_cell(cell, column)
                if issue is not None:
                    issues.append(issue)
        yield values, issues


def _parquet_file_rows(
    data: bytes, what: str, path: str, schema: Schema, problems: list[str]
) -> Iterator[tuple[dict[str, Any], list[str]]]:
    declared = {c.name: c for c in schema.columns}
    table = read_parquet(data, what)
    header = list(table.column_names)
    _header_problems(path, header, schema, problems)
    columns: dict[str, list[Any]] = {}
    for name in header:
        column = declared.get(name)
        arrow_column = table.column(name)
        if column is not None and not _arrow_compatible(arrow_column.type, column):
            problems.append(f"{path}: column {name} is {arrow_column.type}, not {column.type}")
            columns[name] = [None] * table.num_rows
            continue
        try:
            columns[name] = arrow_column.to_pylist()
        except (ValueError, OverflowError) as e:  # a date or time beyond Python's datetime
            problems.append(f"{path}: column {name} holds values Python cannot read ({e})")
            columns[name] = [None] * table.num_rows
    for i in range(table.num_rows):
        values = {}
        for name in header:
            value = columns[name][i]
            column = declared.get(name)
            if isinstance(value, float) and math.isnan(value):
                value = None
            if column is not None and column.type == "category" and value is not None:
                value = str(value)
            values[name] = value
        yield values, []


def _file_rows(
    handle: VerifiedDataset, path: str, schema: Schema, problems: list[str]
) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """(row values by column, row problems) for each row of one table file.

    Values are parsed for declared columns (None when null or unreadable) and kept as text
    for undeclared ones; dataset-level problems of the file go to ``problems``.
    """
    what = f"{path} ({handle.digest})"
    data = handle.read_bytes(path)
    reader = _csv_file_rows if path.lower().endswith(".csv") else _parquet_file_rows
    return reader(data, what, path, schema, problems)


def _header_problems(path: str, header: list[str], schema: Schema, problems: list[str]) -> None:
    if len(set(header)) != len(header):
        problems.append(f"{path}: a column name appears twice in the header")
    for column in schema.columns:
        if column.name not in header:
            problems.append(f"{path}: column {column.name} is missing")
    if not schema.extra_columns:
        declared = {c.name for c in schema.columns}
        for name in header:
            if name not in declared:
                problems.append(f"{path}: column {name} is not in the schema")


def _label_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_table(handle: VerifiedDataset, schema: Schema) -> Samples:
    """Every row of every table file of the dataset, in manifest order."""
    import numpy as np

    tables = [p for p in handle.files if is_table(p)]
    ignored = [p for p in handle.files if not is_table(p)]
    if not tables:
        raise InputError(
            f"{handle.root}: no CSV or Parquet file to screen",
            hint="format: table reads *.csv and *.parquet files",
        )
    numeric_columns = [
        c for c in schema.columns if c.type in ("int", "float", "bool") and c.name != schema.label
    ]
    category_columns = [
        c for c in schema.columns if c.type == "category" and c.name != schema.label
    ]
    problems: list[str] = []
    ids: list[str] = []
    files: list[str] = []
    rows: list[int] = []
    numeric: list[list[float]] = []
    categorical: dict[str, list[str | None]] = {c.name: [] for c in category_columns}
    labels: list[str | None] = []
    keys: list[bytes] = []
    violations: list[Violation] = []
    for path in tables:
        for row, (values, issues) in enumerate(_file_rows(handle, path, schema, problems)):
            index = len(ids)
            ids.append(f"{path}#{row}")
            files.append(path)
            rows.append(row)
            for column in schema.columns:
                value = values.get(column.name)
                if value is None:
                    if not column.nulls and column.name in values:
                        issues.append(f"{column.name}: null")
                    continue
                if issue := _check_value(value, column):
                    issues.append(issue)
            numeric.append(
                [
                    float(values[c.name]) if values.get(c.name) is not None else math.nan
                    for c in numeric_columns
                ]
            )
            for c in category_columns:
                categorical[c.name].append(_label_text(values.get(c.name)))
            label = _label_text(values.get(schema.label)) if schema.label else None
            if schema.labels is not None and label is not None and label not in schema.labels:
                issues.append(f"label {label[:40]!r} is not in the declared labels")
            labels.append(label)
            features = [
                [name, repr(value) if isinstance(value, float) else value]
                for name, value in sorted(values.items())
                if name != schema.label
            ]
            encoded = json.dumps(features, ensure_ascii=False, separators=(",", ":"), default=str)
            keys.append(hashlib.sha256(encoded.encode("utf-8")).digest())
            violations.extend(Violation(index, issue) for issue in issues)
    violations = [Violation(None, p) for p in dict.fromkeys(problems)] + violations
    matrix = np.array(numeric, dtype=np.float64).reshape(len(ids), len(numeric_columns))
    return Samples(
        format="table",
        ids=ids,
        files=files,
        rows=rows,
        numeric=matrix,
        numeric_names=[c.name for c in numeric_columns],
        categorical={k: np.array(v, dtype=object) for k, v in categorical.items()},
        labels=np.array(labels, dtype=object) if schema.label else None,
        keys=keys,
        violations=violations,
        ignored=ignored,
    )
