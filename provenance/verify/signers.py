"""Which root of a policy, if any, signed one bundle -- whatever the policy requires of it.

The verifier judges attestations only against the requirements of an artifact's kind. Reports
for people (the lineage, the audit page) and exports that re-sign facts (in-toto links) also
need to know about attestations no requirement names -- a screening result, an evaluation --
and whether someone the policy trusts signed them. This answers that, with the verifier's
rules: revoked attestations and keys count for nothing, a key root verifies only key-signed
bundles and a Sigstore root only keyless ones, and the key hint is never taken as proof.
"""

from __future__ import annotations

from provenance.bundle import Bundle
from provenance.policy.model import Policy
from provenance.verify.core import signed_by_root


def policy_signer(
    bundle: Bundle, policy: Policy, *, offline: bool = True
) -> tuple[str | None, str]:
    """The name of the first root (in policy order) whose key or identity ``bundle``'s signature
    verifies under, and a note saying so or why none does."""
    if bundle.attestation_id in policy.revoked_attestations:
        return None, "revoked by the policy"
    for name, root in policy.roots.items():
        if signed_by_root(bundle, root, policy, offline) is None:
            return name, f"signature verifies under root {name}"
    return None, "no root of the policy verifies this signature"


__all__ = ["policy_signer"]
