"""Dataset statements: built from a manifest, valid against the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from provenance.digest import Algorithm, Digest, build_manifest
from provenance.errors import FormatError, UnsupportedAlgorithmError
from provenance.predicates.dataset import (
    DATASET_PREDICATE,
    Source,
    Transformation,
    dataset_statement,
    parents_of,
)
from provenance.statement import Statement

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "attest" / "dataset.schema.json").read_text()
)


def validate(document: Any) -> None:
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())


def test_minimal_and_full_statements_match_the_schema(dataset: Path) -> None:
    manifest = build_manifest(dataset)
    minimal = dataset_statement(manifest, name="d")
    validate(minimal.to_json())
    parent = Digest(Algorithm.SHA256, "1" * 64)
    full = dataset_statement(
        manifest,
        name="d-clean",
        sources=[
            Source("https://example.org/d.tar", Source.now(), Digest(Algorithm.SHA256, "2" * 64))
        ],
        license="CC0-1.0",
        description="cleaned",
        parents=[parent],
        transformation=Transformation(
            ("python", "clean.py"), Digest(Algorithm.SHA256, "3" * 64), "git+https://x"
        ),
    )
    validate(json.loads(full.to_bytes()))
    assert full.names(manifest.root_digest)
    assert full.predicate_type == DATASET_PREDICATE
    assert full.predicate["files"] == manifest.file_count == 4
    assert parents_of(Statement.from_bytes(full.to_bytes())) == [parent]


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(extra=1),
        lambda p: p.pop("name"),
        lambda p: p["manifest"].update(algorithm="md5"),
        lambda p: p.update(files=-1),
        lambda p: p["sources"].append({"uri": "x", "retrievedAt": "yesterday"}),
        lambda p: p["parents"].append({"digest": {"sha1": "0" * 40}}),
        lambda p: p.update(transformation={"command": []}),
    ],
)
def test_the_schema_refuses_malformed_predicates(dataset: Path, change: Any) -> None:
    document = dataset_statement(build_manifest(dataset), name="d").to_json()
    change(document["predicate"])
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


def test_bad_inputs_are_refused_when_building(dataset: Path) -> None:
    manifest = build_manifest(dataset)
    with pytest.raises(FormatError, match="needs a name"):
        dataset_statement(manifest, name="")
    with pytest.raises(FormatError, match="RFC 3339"):
        Source("https://x", "2026-11-27 10:00")


def test_parents_with_weak_digests_are_refused(dataset: Path) -> None:
    document = dataset_statement(build_manifest(dataset), name="d").to_json()
    document["predicate"]["parents"] = [{"digest": {"md5": "0" * 32}}]
    with pytest.raises(FormatError, match="unaccepted algorithm"):
        parents_of(Statement.from_bytes(json.dumps(document).encode()))
    document["predicate"]["parents"] = [{"digest": {"sha256": "xyz"}}]
    with pytest.raises(UnsupportedAlgorithmError):
        parents_of(Statement.from_bytes(json.dumps(document).encode()))
