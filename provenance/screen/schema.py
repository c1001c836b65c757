"""The screening schema: what a dataset must look like, and how strict each check is.

A YAML file, validated strictly when loaded: unknown keys, duplicate keys, values of the wrong
type or out of range are errors naming the place, because a typo in a schema (``max`` spelled
``mx``) would otherwise silently screen nothing. The file's SHA-256 is recorded in the
screening attestation, so the evidence says which rules the data was held to.

Format (``version: 1``)::

    version: 1
    format: table | arrays | folders
    # table: CSV or Parquet files
    columns:
      NAME: {type: int|float|bool|category|string, min: N, max: N, values: [..], nulls: false}
    extraColumns: false          # a column the schema does not list is a violation
    nullValues: [""]             # CSV cells read as null
    label: NAME                  # the label column (table)
    labels: [..]                 # the allowed labels (table: label values; folders: folder names)
    # arrays (.npy / .npz) and folders (one .npy or image file per sample under [split/]label/)
    array: {shape: [8, 8], dtype: [uint8], min: 0, max: 16, nulls: false}
    npz: {features: x, labels: y}    # arrays: the names inside .npz files
    splits: [train]              # folders: which split directories to screen (default: all)
    checks:
      CHECK: {enabled: true, warn: X, fail: Y, sanitize: true|false, ...options}

The checks, their metric and defaults are in :data:`DEFAULTS`; ``attest/screening.md``
documents them for people.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provenance.errors import FormatError
from provenance.fsutil import read_limited

MAX_SCHEMA_BYTES = 1 << 20
MAX_SAMPLE_ELEMENTS = 1 << 26  # values in one sample array (a 8192 x 8192 image is 1 << 26)
FORMATS = ("table", "arrays", "folders")
COLUMN_TYPES = ("int", "float", "bool", "category", "string")
DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)


class SchemaError(FormatError):
    """The schema file is malformed; the message names where."""


@dataclass(frozen=True)
class CheckSpec:
    """One check's switch, thresholds and options.

    ``higher_is_worse`` says which way the metric points: a flagged fraction, a PSI or an
    accuracy gain is worse when higher; class balance (smallest / largest class) when lower.
    A threshold of None never trips.
    """

    name: str
    enabled: bool
    warn: float | None
    fail: float | None
    sanitize: bool
    higher_is_worse: bool
    options: Mapping[str, Any] = field(default_factory=dict)

    def judge(self, metric: float, *, forced_fail: bool = False) -> str:
        """PASSED, WARNED or FAILED for ``metric`` under these thresholds."""

        def trips(limit: float | None) -> bool:
            if limit is None:
                return False
            return metric > limit if self.higher_is_worse else metric < limit

        if forced_fail or trips(self.fail):
            return "FAILED"
        return "WARNED" if trips(self.warn) else "PASSED"

    def thresholds(self) -> dict[str, Any]:
        """Thresholds and options as recorded in the figures."""
        return {"warn": self.warn, "fail": self.fail, **dict(self.options)}


# name -> (warn, fail, sanitize, higher_is_worse, {option: (default, type)}).
_Option = tuple[Any, type | tuple[type, ...]]
DEFAULTS: dict[str, tuple[float | None, float | None, bool, bool, dict[str, _Option]]] = {
    # fraction of samples violating the declared types, ranges, categories, nulls, shape
    "schema": (0.0, 0.0, True, True, {}),
    # fraction of samples that are extra copies of an earlier sample (features and label)
    "duplicates": (0.0, 0.05, True, True, {}),
    # fraction of samples within `distance` (RMS difference of standardised features)
    "near_duplicates": (0.01, None, False, True, {"distance": (0.01, (int, float))}),
    # fraction of samples whose features also occur with another label
    "label_conflicts": (0.0, 0.01, True, True, {}),
    # fraction with a value beyond `z` robust z-scores AND `iqr` IQRs (per class if perClass)
    "outliers": (
        0.05,
        0.25,
        False,
        True,
        {"z": (3.5, (int, float)), "iqr": (3.0, (int, float)), "perClass": (True, bool)},
    ),
    # fraction IsolationForest scores above `score` (sklearn's score; 0.5 is indifferent)
    "isolation_forest": (0.05, 0.25, False, True, {"score": (0.6, (int, float))}),
    # smallest class count / largest class count (lower is worse)
    "class_balance": (0.5, 0.1, False, False, {}),
    # largest population stability index over features and the label distribution
    "drift": (0.1, 0.25, False, True, {"bins": (10, int)}),
    # fraction flagged by confident learning (+ confident mispredictions) out of fold
    "label_issues": (
        0.01,
        0.05,
        True,
        True,
        {
            "folds": (5, int),
            "rounds": (2, int),
            "margin": (0.5, (int, float)),
            "model": (None, (str, type(None))),
        },
    ),
    # fraction flagged by spectral signatures and activation clustering
    "backdoor": (0.0, 0.01, True, True, {"epochs": (30, int)}),
    # fraction carrying a label-pure, class-foreign window pattern (a patch trigger)
    "trigger_patterns": (
        0.005,
        0.01,
        True,
        True,
        {"windows": ([3], list), "min_count": (5, int)},
    ),
    # largest validation log-loss reduction from leaving one source out; a source whose
    # removal lowers a found trigger's success on the validation set by > trigger_success fails
    "sources": (
        0.005,
        0.01,
        True,
        True,
        {"trigger_success": (0.2, (int, float)), "windows": ([3], list), "min_count": (5, int)},
    ),
}
CHECKS = tuple(DEFAULTS)


@dataclass(frozen=True)
class Column:
    """A declared table column."""

    name: str
    type: str
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None
    nulls: bool = False


@dataclass(frozen=True)
class ArraySpec:
    """What every sample array must be: shape (per sample), dtypes, value range, NaN."""

    shape: tuple[int, ...] | None = None
    dtypes: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    nulls: bool = False


@dataclass(frozen=True)
class Schema:
    """A loaded, validated screening schema."""

    format: str
    checks: Mapping[str, CheckSpec]
    digest: str  # sha256 hex of the file's bytes
    columns: tuple[Column, ...] = ()
    extra_columns: bool = False
    null_values: tuple[str, ...] = ("",)
    label: str | None = None
    labels: tuple[str, ...] | None = None
    array: ArraySpec | None = None
    npz_features: str = "x"
    npz_labels: str | None = "y"
    splits: tuple[str, ...] | None = None
    source: str = "schema"

    def column(self, name: str) -> Column | None:
        """The declared column ``name``, if any."""
        return next((c for c in self.columns if c.name == name), None)


class _StrictLoader(yaml.SafeLoader):
    """Refuses duplicate keys (PyYAML keeps the last one silently)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise SchemaError(f"keys must be strings (line {key_node.start_mark.line + 1})")
        if key in result:
            raise SchemaError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _keys(
    value: Any, where: str, *, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(f"{where} must be a mapping")
    if unknown := sorted(set(value) - allowed):
        raise SchemaError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if missing := sorted(required - set(value)):
        raise SchemaError(f"{where}: missing {', '.join(missing)}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{where} must be a finite number")
    try:
        number = float(value)  # an integer beyond a float's range overflows
    except OverflowError as e:
        raise SchemaError(f"{where} must be a finite number") from e
    if not math.isfinite(number):
        raise SchemaError(f"{where} must be a finite number")
    return number


def _optional_number(document: Mapping[str, Any], key: str, where: str) -> float | None:
    value = document.get(key)
    return None if value is None else _number(value, f"{where}.{key}")


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(f"{where} must be true or false")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SchemaError(f"{where} must be a non-empty string")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    """A non-empty list of distinct strings (numbers are accepted and read as their text)."""
    if not isinstance(value, list) or not value:
        raise SchemaError(f"{where} must be a non-empty list")
    items: list[str] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise SchemaError(f"{where}: {item!r} is not a string")
        items.append(str(item))
    if len(set(items)) != len(items):
        raise SchemaError(f"{where} lists a value twice")
    return tuple(items)


def _range(low: float | None, high: float | None, where: str) -> None:
    if low is not None and high is not None and low > high:
        raise SchemaError(f"{where}: min is greater than max")


def _column(name: str, value: Any) -> Column:
    where = f"columns.{name}"
    spec = _keys(value, where, allowed={"type", "min", "max", "values", "nulls"}, required={"type"})
    kind = spec["type"]
    if kind not in COLUMN_TYPES:
        raise SchemaError(f"{where}.type must be one of {', '.join(COLUMN_TYPES)}")
    low, high = _optional_number(spec, "min", where), _optional_number(spec, "max", where)
    if (low is not None or high is not None) and kind not in ("int", "float"):
        raise SchemaError(f"{where}: min/max apply to int and float columns only")
    _range(low, high, where)
    values = spec.get("values")
    if values is not None and kind != "category":
        raise SchemaError(f"{where}: values apply to category columns only")
    if kind == "category" and values is None:
        raise SchemaError(f"{where}: a category column needs its values")
    return Column(
        name,
        kind,
        low,
        high,
        _strings(values, f"{where}.values") if values is not None else None,
        _bool(spec.get("nulls", False), f"{where}.nulls"),
    )


def _array(value: Any) -> ArraySpec:
    spec = _keys(value, "array", allowed={"shape", "dtype", "min", "max", "nulls"})
    shape = spec.get("shape")
    if shape is not None:
        if not isinstance(shape, list) or not shape:
            raise SchemaError("array.shape must be a non-empty list of positive integers")
        for size in shape:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise SchemaError("array.shape must be a non-empty list of positive integers")
        if math.prod(shape) > MAX_SAMPLE_ELEMENTS:
            raise SchemaError(f"array.shape: more than {MAX_SAMPLE_ELEMENTS} values per sample")
    dtype = spec.get("dtype")
    dtypes = [dtype] if isinstance(dtype, str) else dtype
    if dtypes is not None:
        dtypes = _strings(dtypes, "array.dtype")
        if unknown := [d for d in dtypes if d not in DTYPES]:
            raise SchemaError(f"array.dtype: unknown dtype {unknown[0]!r}")
    low, high = _optional_number(spec, "min", "array"), _optional_number(spec, "max", "array")
    _range(low, high, "array")
    return ArraySpec(
        tuple(shape) if shape is not None else None,
        dtypes,
        low,
        high,
        _bool(spec.get("nulls", False), "array.nulls"),
    )


def _check(name: str, value: Any) -> CheckSpec:
    warn, fail, sanitize, higher, options = DEFAULTS[name]
    where = f"checks.{name}"
    if value is None:
        value = {}
    spec = _keys(value, where, allowed={"enabled", "warn", "fail", "sanitize", *options})
    if "warn" in spec:
        warn = _optional_number(spec, "warn", where)
    if "fail" in spec:
        fail = _optional_number(spec, "fail", where)
    for key, limit in (("warn", warn), ("fail", fail)):
        if limit is not None and limit < 0:
            raise SchemaError(f"{where}.{key} must not be negative")
    if warn is not None and fail is not None and (warn > fail if higher else warn < fail):
        raise SchemaError(f"{where}: warn is stricter than fail the wrong way round")
    chosen: dict[str, Any] = {}
    for key, (default, kinds) in options.items():
        option = spec.get(key, default)
        if option is None and default is not None:
            raise SchemaError(f"{where}.{key} must not be null")
        if option is not None and (
            isinstance(option, bool) is not (kinds is bool) or not isinstance(option, kinds)
        ):
            raise SchemaError(f"{where}.{key} has the wrong type")
        if isinstance(option, int | float) and not isinstance(option, bool):
            _number(option, f"{where}.{key}")  # finite, and within a float's range
            if option <= 0:
                raise SchemaError(f"{where}.{key} must be positive")
        chosen[key] = option
    _check_options(name, chosen, where)
    return CheckSpec(
        name,
        _bool(spec.get("enabled", True), f"{where}.enabled"),
        warn,
        fail,
        _bool(spec.get("sanitize", sanitize), f"{where}.sanitize"),
        higher,
        chosen,
    )


def _check_options(name: str, chosen: Mapping[str, Any], where: str) -> None:
    """The limits of one check's options beyond their types."""
    if name in ("trigger_patterns", "sources"):
        _windows(chosen["windows"], f"{where}.windows")
    if name == "sources" and chosen["trigger_success"] >= 1:
        raise SchemaError(f"{where}.trigger_success must be below 1 (a share of images)")
    if name == "label_issues" and chosen["folds"] < 2:
        raise SchemaError(f"{where}.folds must be at least 2")
    if name == "drift" and chosen["bins"] < 2:
        raise SchemaError(f"{where}.bins must be at least 2")
    model = chosen.get("model")
    if model is not None and (model.count(":") != 1 or not all(model.split(":"))):
        raise SchemaError(f"{where}.model must be 'module:function'")


def _windows(value: list[Any], where: str) -> None:
    """Window sizes: a non-empty list of positive integers (pixels on a side)."""
    if not value or any(
        isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in value
    ):
        raise SchemaError(f"{where} must be a non-empty list of positive integers")


_TOP = {
    "version",
    "format",
    "columns",
    "extraColumns",
    "nullValues",
    "label",
    "labels",
    "array",
    "npz",
    "splits",
    "checks",
}


def parse_schema(document: Any, *, digest: str, source: str = "schema") -> Schema:
    """A validated :class:`Schema` from the parsed YAML ``document``."""
    top = _keys(document, "schema", allowed=_TOP, required={"version", "format"})
    if type(top["version"]) is not int or top["version"] != 1:
        raise SchemaError("version must be 1")
    kind = top["format"]
    if kind not in FORMATS:
        raise SchemaError(f"format must be one of {', '.join(FORMATS)}")
    table_only = {"columns", "extraColumns", "nullValues", "label"}
    array_only = {"array", "npz", "splits"}
    misplaced = sorted((table_only if kind != "table" else array_only) & set(top))
    if kind == "arrays" and "splits" in top:
        misplaced.append("splits")
    if kind == "folders" and "npz" in top:
        misplaced.append("npz")
    if misplaced:
        raise SchemaError(f"{', '.join(misplaced)} do(es) not apply to format {kind}")
    checks_doc = _keys(top.get("checks") or {}, "checks", allowed=set(CHECKS))
    checks = {name: _check(name, checks_doc.get(name)) for name in CHECKS}
    labels = _strings(top["labels"], "labels") if "labels" in top else None
    common: dict[str, Any] = {
        "format": kind,
        "checks": checks,
        "digest": digest,
        "labels": labels,
        "source": source,
    }
    if kind == "table":
        columns_doc = top.get("columns")
        if not isinstance(columns_doc, dict) or not columns_doc:
            raise SchemaError("columns must be a non-empty mapping of column name to its spec")
        columns = tuple(_column(name, spec) for name, spec in columns_doc.items())
        label = top.get("label")
        if label is not None:
            label = _name(label, "label")
            if label not in columns_doc:
                raise SchemaError(f"label {label!r} is not a declared column")
            declared = next(c for c in columns if c.name == label)
            if declared.type in ("float",):
                raise SchemaError(f"label {label!r} must be a category, int, bool or string")
        null_values = top.get("nullValues", [""])
        if not isinstance(null_values, list) or not all(isinstance(v, str) for v in null_values):
            raise SchemaError("nullValues must be a list of strings")
        return Schema(
            **common,
            columns=columns,
            extra_columns=_bool(top.get("extraColumns", False), "extraColumns"),
            null_values=tuple(null_values),
            label=label,
        )
    npz = _keys(top.get("npz", {}), "npz", allowed={"features", "labels"})
    splits = top.get("splits")
    return Schema(
        **common,
        array=_array(top.get("array", {})),
        npz_features=_name(npz.get("features", "x"), "npz.features"),
        npz_labels=None
        if npz.get("labels", "y") is None
        else _name(npz.get("labels", "y"), "npz.labels"),
        splits=_strings(splits, "splits") if splits is not None else None,
    )


def read_schema(data: bytes, *, source: str = "schema") -> Schema:
    """Validate the bytes of a schema file; errors name ``source`` (the file, for people)."""
    if len(data) > MAX_SCHEMA_BYTES:
        raise SchemaError(f"{source}: larger than {MAX_SCHEMA_BYTES} bytes")
    try:
        document = yaml.load(data.decode("utf-8"), Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except UnicodeDecodeError as e:
        raise SchemaError(f"{source}: not UTF-8 text") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SchemaError(f"{source}: not valid YAML{where}") from e
    except SchemaError as e:
        raise SchemaError(f"{source}: {e.message}") from e
    except RecursionError as e:  # PyYAML composes nested collections recursively
        raise SchemaError(f"{source}: nested too deeply") from e
    except ValueError as e:  # e.g. an integer beyond the interpreter's digit limit
        raise SchemaError(f"{source}: unreadable value ({e})") from e
    try:
        return parse_schema(document, digest=hashlib.sha256(data).hexdigest(), source=source)
    except SchemaError as e:
        raise SchemaError(f"{source}: {e.message}") from e


def load_schema(path: Path) -> Schema:
    """Read and validate the schema file at ``path``."""
    return read_schema(read_limited(path, MAX_SCHEMA_BYTES, what="schema"), source=str(path))
