"""Every parser of untrusted input lets only documented errors escape, whatever it is fed.

Deterministic (derandomized, no example database) and short, for CI: 200 examples per
target. ``bench/fuzz.py`` runs the same targets for minutes with atheris or hypothesis. The
``example`` inputs are the ones earlier fuzzing found, kept as regressions.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.errors import InputError
from provenance.guard.pickle_scan import scan_bytes
from tests.fuzz.strategies import inputs
from tests.fuzz.targets import TARGETS, parquet_bytes, run, warm_up

CI = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    warm_up()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_only_documented_errors_escape(name: str) -> None:
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        run(TARGETS[name], data.draw(inputs(name), label=name))

    CI(fuzz)()


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n",
        b"\xef\xbb\xbf{}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"9" * 5_000,
        b"\xff\xfe\x00",
        b'{"a": 1, "a": 2}',
        b"null",
    ],
    ids=[
        "empty",
        "newline",
        "bom",
        "deep-array",
        "deep-object",
        "long-int",
        "utf16",
        "dup",
        "null",
    ],
)
def test_hostile_classics(name: str, raw: bytes) -> None:
    run(TARGETS[name], raw)


def _npy(header: bytes, body: bytes = bytes(16)) -> bytes:
    """A version 1.0 ``.npy`` file with ``header`` as its (padded) header."""
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body


def _array(array: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz_of_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", b"not an array")
    return buffer.getvalue()


def _parquet(**columns: Any) -> bytes:
    import pyarrow as pa  # type: ignore[import-untyped]

    return parquet_bytes({k: pa.array(*v) for k, v in columns.items()})


def _encrypted_npz() -> bytes:
    """An ``.npz`` whose member says it is encrypted (zipfile: RuntimeError on reading)."""
    buffer = io.BytesIO()
    np.savez(buffer, x=np.arange(4))
    data = bytearray(buffer.getvalue())
    data[data.find(b"PK\x03\x04") + 6] |= 1
    data[data.find(b"PK\x01\x02") + 8] |= 1
    return bytes(data)


def _parquet_named(name: bytes) -> bytes:
    """A Parquet file whose one column is named ``name`` (5 bytes), UTF-8 or not."""
    import pyarrow as pa

    written = parquet_bytes({"label": pa.array(["a"])}, store_schema=False)
    assert written.count(b"label") == 2  # the schema, and the column chunk's path
    return written.replace(b"label", name)


def _timestamp() -> Any:
    import pyarrow as pa

    return pa.timestamp("ms")


def _date() -> Any:
    import pyarrow as pa

    return pa.date32()


_CSV = b"n,x,flag,colour,note,label\n"
_FEATURES = ",".join(f'"{n}":{{"edges":[],"shares":[0,0]}}' for n in ("n", "x", "flag"))
_SCREENING = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": "d" * 64}}],
        "predicateType": "https://ml-provenance.dev/attestation/screening/v1",
        "predicate": {"result": "PASSED", "profile": {"version": 1, "features": {"n": []}}},
    }
).encode()
_SHAPE = b"{'descr': '<f4', 'fortran_order': False, 'shape': "
_CUT_HEADER = _npy(_SHAPE + b"(3, ")  # tokenize.TokenError from numpy's legacy header filter
_HUGE_SHAPE = _npy(_SHAPE + b"(1" + b"0" * 30 + b",), }")  # OverflowError: int64 product
_PY2_HEADER = _npy(_SHAPE + b"(2L,), }")  # numpy's UserWarning: a Python 2 header
_COMMA_DESCR = _npy(b"{'descr': ',f8', 'fortran_order': False, 'shape': (2,), }")  # SyntaxError
_BYTES_KEY = _npy(b"{'descr': '|u1', 'fortran_order': False, b'shape': (2,), }")  # TypeError
_ALIAS = _npy(b"{'descr': [('a', '<a4')], 'fortran_order': False, 'shape': (2,), }")  # Deprecation


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        pytest.param("policy", b"[" * 100_000 + b"]" * 100_000, id="policy-deep"),  # RecursionError
        pytest.param("policy", b"version: " + b"9" * 5_000, id="policy-long-int"),  # digit limit
        pytest.param("record", "a.py,,\u00b2".encode(), id="record-superscript"),  # int("²")
        pytest.param("record", b"a.py,," + b"9" * 5_000, id="record-long"),
        pytest.param("pickle", b"\x93NUMPY\x02\x00\x10\x00", id="npy-v2-short"),  # struct.error
        # DeprecationWarning: a STRING argument with an invalid escape (codecs.escape_decode)
        pytest.param("pickle", b"\x80\x02S'\\ '\n.", id="pickle-bad-escape"),
        # TypeError: an option given as null (compared with a number)
        pytest.param(
            "screen_schema",
            b"version: 1\nformat: table\nchecks:\n  drift: {bins: }\n",
            id="null-option",
        ),
        # RuntimeWarning: a signalling NaN cast to float64
        pytest.param(
            "screen_arrays",
            _npy(
                b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }",
                b"\x00\x00\x80?\xff\xff\xbf\x7f" * 2,
            ),
            id="arrays-signalling-nan",
        ),
        pytest.param(
            "osv", b'{"id":"X","modified":"m","affected":[{"ranges":5}]}', id="osv-ranges"
        ),  # TypeError
        pytest.param(
            "osv",
            b'{"id":"X","modified":"m","affected":[{"ranges":[{"type":"SEMVER","events":1}]}]}',
            id="osv-events",
        ),
        # the digit limit's ValueError from PyYAML, as for policies (and the RecursionError of
        # deep nesting: the hostile classic deep-array)
        pytest.param("screen_schema", b"version: " + b"9" * 5_000, id="schema-long-int"),
        pytest.param(  # OverflowError: math.isfinite of an int beyond a float
            "screen_schema",
            b"version: 1\nformat: folders\narray: {min: 1" + b"0" * 400 + b"}\n",
            id="schema-min-beyond-float",
        ),
        pytest.param(  # OverflowError: float() of the int cell, for the feature matrix
            "screen_csv", _CSV + b"9" * 400 + b",1,true,red,,a\n", id="csv-int-beyond-float"
        ),
        pytest.param(  # RuntimeWarning (inf - inf) and NaN edges: infinities in the profile
            "screen_csv", _CSV + b"1,inf,true,red,,a\n" * 8, id="csv-infinities"
        ),
        pytest.param(  # OverflowError: a timestamp beyond Python's datetime, in to_pylist()
            "screen_parquet", _parquet(when=([2**62], _timestamp())), id="parquet-timestamp"
        ),
        pytest.param(  # OverflowError: likewise a date
            "screen_parquet", _parquet(day=([2**31 - 1], _date())), id="parquet-date"
        ),
        pytest.param(  # UnicodeDecodeError: a column name not UTF-8, in the metadata
            "screen_parquet", _parquet_named(b"\xccabel"), id="parquet-name-not-utf8"
        ),
        pytest.param(  # AttributeError: a feature that is not an object
            "drift_profile", b'{"version":1,"features":{"a":"x"}}', id="profile-feature"
        ),
        pytest.param(  # AttributeError: categories as a list
            "drift_profile",
            b'{"version":1,"features":{' + _FEATURES.encode() + b'},"categories":[]}',
            id="profile-categories",
        ),
        pytest.param(  # TypeError: a label share that is text
            "drift_profile",
            b'{"version":1,"features":{' + _FEATURES.encode() + b'},"labels":{"a":"x"}}',
            id="profile-label-share",
        ),
        pytest.param("screening", _SCREENING, id="screening-profile-feature"),  # AttributeError
        pytest.param("screen_arrays", _CUT_HEADER, id="arrays-cut-header"),
        pytest.param("screen_arrays", _HUGE_SHAPE, id="arrays-huge-shape"),
        pytest.param("screen_arrays", _PY2_HEADER, id="arrays-py2-header"),
        pytest.param(  # ComplexWarning: complex samples cast to float64
            "screen_arrays",
            _array(np.array([[1 + 2j, 0], [3, 4j]], np.complex64)),
            id="arrays-complex",
        ),
        pytest.param("screen_arrays", _npz_of_bytes(), id="arrays-npz-member"),  # AttributeError
        pytest.param("screen_arrays", _encrypted_npz(), id="arrays-npz-encrypted"),  # RuntimeError
        pytest.param("screen_arrays", _COMMA_DESCR, id="arrays-comma-descr"),
        pytest.param("screen_arrays", _BYTES_KEY, id="arrays-bytes-key"),
        pytest.param("screen_arrays", _ALIAS, id="arrays-dtype-alias"),
        pytest.param("npy_decoder", _CUT_HEADER, id="decoder-cut-header"),
        pytest.param("npy_decoder", _COMMA_DESCR, id="decoder-comma-descr"),
        pytest.param("npy_decoder", _BYTES_KEY, id="decoder-bytes-key"),
        pytest.param("npy_decoder", _ALIAS, id="decoder-dtype-alias"),
        pytest.param("npy_decoder", _HUGE_SHAPE, id="decoder-huge-shape"),
        pytest.param("npy_decoder", _PY2_HEADER, id="decoder-py2-header"),
        pytest.param("npy_decoder", b"PK\x03\x04" + bytes(26), id="decoder-cut-zip"),  # BadZipFile
        pytest.param(  # RuntimeWarning: overflow in the cast to float32
            "npy_decoder", _array(np.array([1e300])), id="decoder-float32-overflow"
        ),
    ],
)
def test_found_while_fuzzing(name: str, raw: bytes) -> None:
    """Inputs that once let another exception escape (see tests/fuzz/README.md)."""
    run(TARGETS[name], raw)


FOUND = Path(__file__).parent / "found"


@pytest.mark.parametrize(
    ("name", "file"), [("screen_parquet", "parquet-dictionary-index-out-of-bounds.bin")]
)
def test_found_while_fuzzing_stored(name: str, file: str) -> None:
    """Inputs that once let another exception escape, too irregular to build here: kept as
    libFuzzer wrote them (``tests/fuzz/found``)."""
    run(TARGETS[name], (FOUND / file).read_bytes())


def test_a_parquet_bomb_is_refused_before_it_is_read() -> None:
    """Ten million rows of one value compress to some 50 kB; read, they would be ten million
    Python dictionaries. The metadata says so before anything is decoded."""
    import pyarrow as pa

    from provenance.screen.tables import read_parquet

    bomb = parquet_bytes({"n": pa.repeat(1, 10_000_000)}, compression="zstd")
    assert len(bomb) < 100_000
    with pytest.raises(InputError, match=r"10000000 rows of 1 columns from \d+ bytes is more than"):
        read_parquet(bomb, "bomb.parquet")
    run(TARGETS["screen_parquet"], bomb)
    assert read_parquet(parquet_bytes({"n": pa.repeat(1, 100_000)}), "ok").num_rows == 100_000


def _zip(name: str = "archive/data.pkl", method: int = zipfile.ZIP_DEFLATED) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        info = zipfile.ZipInfo(name)
        info.compress_type = method
        archive.writestr(info, pickle.dumps(list(range(100)), protocol=2))
    return bytearray(buffer.getvalue())


def _damaged_zip(how: str) -> bytes:
    """A torch-style zip damaged the ways atheris found (or their neighbours)."""
    if how == "empty-name":
        return bytes(_zip(""))
    data = _zip()
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    if how == "version":  # a zip version zipfile does not implement (its constructor raises)
        data[central + 6] = 235  # "version needed to extract": 23.5
        return bytes(data)
    if how == "method":  # a compression method zipfile does not implement
        data[local + 8 : local + 10] = data[central + 10 : central + 12] = b"\x63\x00"
    elif how == "encrypted":
        data[local + 6] |= 1
        data[central + 8] |= 1
    else:  # corrupt deflate data
        start = local + 30 + len("archive/data.pkl")
        data[start + 5 : start + 7] = b"\xff\xff"
    return bytes(data)


@pytest.mark.parametrize("how", ["empty-name", "version", "method", "encrypted", "deflate"])
def test_a_damaged_zip_is_a_finding_not_a_crash(how: str) -> None:
    """Each of these once let IndexError, NotImplementedError, RuntimeError or zlib.error
    escape the pickle scanner, and so ``provenance scan`` and the guarded loader."""
    result = scan_bytes(_damaged_zip(how))
    if how == "empty-name":  # an odd name, but a readable member: scanned like any other
        assert (result.pickles, result.findings) == (1, [])
    else:
        assert any("zip archive" in f for f in result.findings), result.findings
