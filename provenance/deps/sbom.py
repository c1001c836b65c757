"""The environment SBOM: a reproducible CycloneDX 1.6 JSON document, and the digest naming it.

Built with cyclonedx-python-lib from an :class:`~provenance.deps.inventory.Environment`. Each
installed distribution is a ``library`` component with its name, version, package URL
(``pkg:pypi/<normalised name>@<version>``), declared licences and the SHA-256 of its RECORD
file -- which lists the hash of every file it installed, so the one hash covers them all. The
interpreter itself is the ``metadata.component`` (type ``platform``: implementation, version
and platform tag as properties).

Reproducibility is the point: the *environment digest* is the SHA-256 of the exact SBOM bytes,
and the same environment must always give the same digest. So the document carries no
``serialNumber`` (random by default) and no ``metadata.timestamp``, both optional in
CycloneDX; no tool versions (upgrading this toolkit must not change the environment's name);
no paths (moving nothing changes nothing); components are sorted; and the bytes are RFC 8785
canonical JSON, like every content-addressed document of this project (``sha256sum sbom.json``
prints the digest). When the SBOM was made and by whom is what the signed statement around it
says. What the same environment does *not* mean: a copy at another path whose console-script
RECORD entries name another interpreter path has different RECORD bytes, hence another digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provenance.deps.inventory import Environment, InstalledDistribution
from provenance.deps.record import MAX_RECORD_BYTES
from provenance.digest.algorithms import Algorithm, Digest
from provenance.errors import InputError
from provenance.fsutil import read_limited

if TYPE_CHECKING:
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model.license import License

ENVIRONMENT_NAME = "python-environment"
MAX_LICENSE_FIELD = 100  # a longer License field is licence text, not a name or an SPDX id
PROPERTY_PREFIX = "ml-provenance:"


@dataclass(frozen=True)
class Sbom:
    """The SBOM bytes and their digest (the environment digest)."""

    data: bytes
    digest: Digest

    def document(self) -> dict[str, Any]:
        """The SBOM as a JSON object (the predicate of an SBOM statement)."""
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed


def record_sha256(dist: InstalledDistribution) -> str | None:
    """The SHA-256 of ``dist``'s RECORD file, or None when it has none."""
    record = dist.record
    if record is None:
        return None
    try:
        data = read_limited(record, MAX_RECORD_BYTES, what="RECORD")
    except OSError as e:
        raise InputError(f"cannot read {record}: {e.strerror}") from e
    return hashlib.sha256(data).hexdigest()


def purl(dist: InstalledDistribution) -> str:
    """The distribution's package URL."""
    from packageurl import PackageURL

    return str(PackageURL(type="pypi", name=dist.normalized_name, version=dist.version))


def _trove_to_spdx(classifier: str) -> str | None:
    """The SPDX id of a licence classifier, from cyclonedx-bom's table when it is importable.

    That table lives in a private module of cyclonedx-bom; if a release moves it, classifiers
    are recorded by name instead, which loses precision but nothing else.
    """
    try:
        from cyclonedx_py._internal.utils.license_trove_classifier import license_trove2spdx
    except ImportError:  # pragma: no cover - depends on cyclonedx-bom's internals
        return None
    result = license_trove2spdx(classifier)
    return result if isinstance(result, str) else None


def licenses(dist: InstalledDistribution, factory: LicenseFactory) -> list[License]:
    """The licences ``dist`` declares, as CycloneDX can represent them.

    PEP 639: a ``License-Expression`` replaces the older fields. Otherwise licence classifiers
    (mapped to SPDX ids where the mapping is unambiguous, else named) and a short ``License``
    field (an SPDX id or expression, or a name). CycloneDX allows either one expression or a
    list of single licences, so an expression from ``License`` is kept only when nothing else
    was declared.
    """
    from cyclonedx.model.license import DisjunctiveLicense, LicenseAcknowledgement

    declared = LicenseAcknowledgement.DECLARED
    if dist.license_expression and dist.license_expression.strip():
        return [
            factory.make_from_string(
                dist.license_expression.strip(), license_acknowledgement=declared
            )
        ]
    found: list[License] = []
    for classifier in sorted(set(dist.classifiers)):
        spdx = _trove_to_spdx(classifier)
        name = spdx or classifier.removeprefix("License :: ")
        found.append(factory.make_from_string(name, license_acknowledgement=declared))
    text = (dist.license or "").strip()
    if text and "\n" not in text and len(text) <= MAX_LICENSE_FIELD and text.upper() != "UNKNOWN":
        found.append(factory.make_from_string(text, license_acknowledgement=declared))
    single: list[License] = [lic for lic in found if isinstance(lic, DisjunctiveLicense)]
    if len(single) != len(found):  # an expression among others: keep the single licences
        return single or found[-1:]
    unique: dict[tuple[str | None, str | None], License] = {}
    for lic in single:
        assert isinstance(lic, DisjunctiveLicense)
        unique.setdefault((lic.id, lic.name), lic)
    return list(unique.values())


def build_sbom(environment: Environment) -> Sbom:
    """The environment's SBOM (see the module docstring)."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    from provenance.digest.canonical import canonical_json

    factory = LicenseFactory()
    rows = sorted(
        ((d, record_sha256(d)) for d in environment.distributions),
        key=lambda row: (row[0].normalized_name, row[0].version, row[1] or ""),
    )
    bom = Bom()
    root = bom.metadata.component = Component(
        type=ComponentType.PLATFORM,
        name=ENVIRONMENT_NAME,
        version=environment.version,
        bom_ref=ENVIRONMENT_NAME,
        properties=[
            Property(
                name=f"{PROPERTY_PREFIX}python-implementation", value=environment.implementation
            ),
            Property(name=f"{PROPERTY_PREFIX}platform", value=environment.platform),
        ],
    )
    seen: dict[str, int] = {}
    components = []
    for dist, record in rows:
        package_url = PackageURL(type="pypi", name=dist.normalized_name, version=dist.version)
        ref = str(package_url)
        seen[ref] = seen.get(ref, 0) + 1
        if seen[ref] > 1:  # the same name and version installed twice (two site directories)
            ref = f"{ref}#{seen[ref]}"
        component = Component(
            type=ComponentType.LIBRARY,
            name=dist.name,
            version=dist.version,
            purl=package_url,
            bom_ref=ref,
            licenses=licenses(dist, factory),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=record)] if record else [],
        )
        bom.components.add(component)
        components.append(component)
    # The environment holds every distribution (which requires which is not recorded).
    bom.register_dependency(root, components)
    document = json.loads(JsonV1Dot6(bom).output_as_string())
    document.pop("serialNumber", None)
    metadata = document.get("metadata", {})
    metadata.pop("timestamp", None)
    metadata.pop("tools", None)
    data = canonical_json(document)
    return Sbom(data, Digest(Algorithm.SHA256, hashlib.sha256(data).hexdigest()))
