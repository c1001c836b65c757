"""Every parser of untrusted input lets only documented errors escape, whatever it is fed.

Deterministic (derandomized, no example database) and short, for CI: 200 examples per
target. ``bench/fuzz.py`` runs the same targets for minutes with atheris or hypothesis. The
``example`` inputs are the ones earlier fuzzing found, kept as regressions.
"""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.guard.pickle_scan import scan_bytes
from tests.fuzz.strategies import inputs
from tests.fuzz.targets import TARGETS, run, warm_up

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
@CI
@given(data=st.data())
def test_only_documented_errors_escape(name: str, data: st.DataObject) -> None:
    run(TARGETS[name], data.draw(inputs(name), label=name))


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


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("policy", b"[" * 100_000 + b"]" * 100_000),  # RecursionError escaped PyYAML
        ("policy", b"version: " + b"9" * 5_000),  # ValueError: the int digit limit
        ("record", "a.py,,\u00b2".encode()),  # "²".isdigit(), but int("²") fails
        ("record", b"a.py,," + b"9" * 5_000),
        ("pickle", b"\x93NUMPY\x02\x00\x10\x00"),  # struct.error: a v2 header cut short
        ("osv", b'{"id":"X","modified":"m","affected":[{"ranges":5}]}'),  # TypeError
        (
            "osv",
            b'{"id":"X","modified":"m","affected":[{"ranges":[{"type":"SEMVER","events":1}]}]}',
        ),
    ],
    ids=[
        "policy-deep",
        "policy-long-int",
        "record-superscript",
        "record-long",
        "npy-v2-short",
        "osv-ranges",
        "osv-events",
    ],
)
def test_found_while_fuzzing(name: str, raw: bytes) -> None:
    """Inputs that once let another exception escape (see tests/fuzz/README.md)."""
    run(TARGETS[name], raw)


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
