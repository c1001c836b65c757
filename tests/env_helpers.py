"""Throwaway Python environments for the ``provenance env`` tests, built offline.

A virtual environment is created without pip, and wheels made here (zip files with a real
RECORD) are installed into it by this interpreter's pip with ``--python``, ``--no-index`` and
``--no-deps``: a real install, nothing fetched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from provenance.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "osv"
ATTEST = Path(__file__).parent.parent / "attest"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    directory: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    metadata: str = "",
) -> Path:
    """A pure-Python wheel of ``files`` (paths relative to site-packages) with a RECORD."""
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n{metadata}"
    ).encode()
    contents[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: ml-provenance-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    rows = [f"{path},{_record_hash(data)},{len(data)}" for path, data in contents.items()]
    rows.append(f"{dist_info}/RECORD,,")
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in contents.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist_info}/RECORD", "\n".join(rows) + "\n")
    return wheel


def make_venv(path: Path, *wheels: Path) -> Path:
    """A virtual environment at ``path`` with ``wheels`` installed; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    if wheels:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "--disable-pip-version-check",
                "--no-input",
                "install",
                "--quiet",
                "--no-index",
                "--no-deps",
                "--no-cache-dir",
                *map(str, wheels),
            ],
            check=True,
        )
    return python


def site_packages(venv: Path) -> Path:
    """The venv's site-packages directory."""
    (found,) = (venv / "lib").glob("python*/site-packages")
    return found


def osv_records() -> list[dict[str, Any]]:
    """The recorded advisories as OSV JSON documents (the PyPA YAML converted)."""
    import yaml

    ghsa = json.loads((FIXTURES / "GHSA-x84v-xcm2-53pg.json").read_bytes())
    pysec = yaml.safe_load((FIXTURES / "PYSEC-2018-28.yaml").read_text())
    return [ghsa, pysec]


def osv_dump(directory: Path) -> Path:
    """A directory laid out like an unpacked OSV dump: one JSON file per record."""
    directory.mkdir(parents=True, exist_ok=True)
    for record in osv_records():
        (directory / f"{record['id']}.json").write_text(json.dumps(record, indent=2))
    return directory


def schema_validate(document: object, schema_name: str) -> None:
    """Validate against one of attest/'s JSON Schemas (raises on failure)."""
    import jsonschema

    schema = json.loads((ATTEST / schema_name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
