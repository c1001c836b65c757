"""Dependencies: environment SBOM (CycloneDX), vulnerability audit (OSV through pip-audit),
and installed-file RECORD integrity.

Below the CLI and above ``digest``/``statement``: these modules describe and check a Python
environment; signing and storing what they find is the caller's business.
"""
