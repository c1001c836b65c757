"""The CycloneDX predicate (``https://cyclonedx.org/bom``): an SBOM as an in-toto statement.

As the in-toto CycloneDX predicate page says, the predicate *is* the BOM. The subject is the
digest of the exact SBOM bytes (for an environment SBOM, the environment digest), so the
statement names the document it carries; ``attest/environment.md`` describes this use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provenance.digest.algorithms import Digest
from provenance.errors import FormatError
from provenance.statement import ResourceDescriptor, Statement

CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom"


def sbom_statement(bom: Mapping[str, Any], digest: Digest, *, name: str) -> Statement:
    """The statement carrying ``bom`` about ``digest`` (the digest of its exact bytes)."""
    if bom.get("bomFormat") != "CycloneDX":
        raise FormatError("the predicate of a CycloneDX statement must be a CycloneDX BOM")
    subject = ResourceDescriptor.for_digest(digest, name=name)
    return Statement((subject,), CYCLONEDX_PREDICATE, bom)
