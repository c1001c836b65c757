"""Signing and verification: keys (file, KMS/HSM) and Sigstore keyless.

This package knows how to produce and check signatures; which signer is *trusted* for what is
the policy's business, above it.
"""
