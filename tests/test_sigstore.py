"""Real Sigstore bundles (recorded from public instances) verify offline, and only as expected.

The bundles live in ``../shared/fixtures/sigstore`` beside the repository, with their
identities in the README there; these tests skip, saying why, where that folder is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest
from provenance.signing.keys import KeySigner, SignatureError
from provenance.signing.sigstore import Identity, Instance, verify, verify_statement
from provenance.statement import ResourceDescriptor, Statement

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "sigstore"
pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"recorded Sigstore bundles not found at {FIXTURES}"
)

GITHUB = "https://token.actions.githubusercontent.com"
SLSA_GENERATOR = (
    "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
    "generator_generic_slsa3.yml@refs/heads/main"
)
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
RFC8785_RELEASE = (
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
)


def load(name: str) -> Bundle:
    return Bundle.from_bytes((FIXTURES / name).read_bytes(), source=name)


def test_production_dsse_bundle_verifies_and_yields_its_statement() -> None:
    payload = verify(load("valid-v0.3.intoto.sigstore"), Identity(SLSA_GENERATOR, GITHUB))
    assert payload is not None
    document = json.loads(payload)
    assert document["predicateType"] == "https://slsa.dev/provenance/v0.2"
    assert document["subject"][0]["digest"]["sha256"] == (
        "2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd"
    )


def test_staging_rekor_v2_bundle_yields_a_v1_statement() -> None:
    statement = verify_statement(
        load("a.dsse.staging-rekor-v2.txt.sigstore.json"),
        Identity(BEACON, GITHUB),
        instance=Instance.STAGING,
    )
    assert statement.predicate_type == "https://slsa.dev/provenance/v1"
    assert statement.subjects[0].digest["sha256"] == (
        "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
    )


def test_message_signature_bundles_verify_against_their_artifact() -> None:
    wheel = (FIXTURES / "bundle_v3_github.whl").read_bytes()
    assert (
        verify(
            load("bundle_v3_github.whl.sigstore"), Identity(RFC8785_RELEASE, GITHUB), artifact=wheel
        )
        is None
    )
    text = (FIXTURES / "bundle_v3.txt").read_bytes()
    identity = Identity("william@yossarian.net", "https://github.com/login/oauth")
    verify(load("bundle_v3.txt.sigstore"), identity, instance=Instance.STAGING, artifact=text)
    with pytest.raises(SignatureError):
        verify(
            load("bundle_v3.txt.sigstore"),
            identity,
            instance=Instance.STAGING,
            artifact=text + b"!",
        )


def test_identity_patterns_are_anchored() -> None:
    bundle = load("valid-v0.3.intoto.sigstore")
    pattern = r"https://github\.com/slsa-framework/slsa-github-generator/.+@refs/heads/main"
    verify(bundle, Identity(pattern, GITHUB, regex=True))
    with pytest.raises(SignatureError, match="does not match"):
        verify(bundle, Identity(r"slsa-github-generator", GITHUB, regex=True))


@pytest.mark.parametrize(
    "identity",
    [
        Identity(
            "https://github.com/someone-else/repo/.github/workflows/x.yml@refs/heads/main", GITHUB
        ),
        Identity(SLSA_GENERATOR, "https://accounts.google.com"),
    ],
)
def test_wrong_identity_or_issuer_is_refused(identity: Identity) -> None:
    with pytest.raises(SignatureError):
        verify(load("valid-v0.3.intoto.sigstore"), identity)


def test_wrong_instance_is_refused() -> None:
    with pytest.raises(SignatureError):
        verify(
            load("valid-v0.3.intoto.sigstore"),
            Identity(SLSA_GENERATOR, GITHUB),
            instance=Instance.STAGING,
        )
    with pytest.raises(SignatureError):
        verify(load("a.dsse.staging-rekor-v2.txt.sigstore.json"), Identity(BEACON, GITHUB))


def _flip(text: str, position: int) -> str:
    return text[:position] + ("A" if text[position] != "A" else "B") + text[position + 1 :]


@pytest.mark.parametrize("field", ["payload", "sig"])
def test_one_changed_byte_is_refused(field: str) -> None:
    document = json.loads((FIXTURES / "valid-v0.3.intoto.sigstore").read_bytes())
    envelope = document["dsseEnvelope"]
    if field == "payload":
        envelope["payload"] = _flip(envelope["payload"], len(envelope["payload"]) // 2)
    else:
        envelope["signatures"][0]["sig"] = _flip(envelope["signatures"][0]["sig"], 10)
    tampered = Bundle.from_bytes(json.dumps(document).encode())
    with pytest.raises(SignatureError):
        verify(tampered, Identity(SLSA_GENERATOR, GITHUB))


def _any_statement() -> Statement:
    digest = Digest(Algorithm.SHA256, "0" * 64)
    return Statement((ResourceDescriptor.for_digest(digest),), "https://example.com/p", {})


def test_key_signed_bundles_are_not_taken_for_keyless() -> None:
    bundle = Bundle.sign_statement(_any_statement(), KeySigner.generate())
    with pytest.raises(SignatureError, match="key-signed"):
        verify(bundle, Identity(SLSA_GENERATOR, GITHUB))


@pytest.mark.online
@pytest.mark.skipif(os.environ.get("PROVENANCE_ONLINE_TESTS") != "1", reason="needs the network")
def test_keyless_signing_round_trip() -> None:
    from provenance.signing.sigstore import sign_statement

    bundle = sign_statement(_any_statement(), instance=Instance.STAGING)
    assert bundle.keyless


def test_certificate_identity_labels_the_signer() -> None:
    from provenance.signing.sigstore import certificate_identity

    assert certificate_identity(load("valid-v0.3.intoto.sigstore")) == (SLSA_GENERATOR, GITHUB)
