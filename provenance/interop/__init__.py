"""Formats of other tools, read and written exactly: OpenSSF model signing (OMS), in-toto
layouts and links exported from a verified chain (:mod:`provenance.interop.intoto`), and the
CycloneDX ML-BOM written from one (:mod:`provenance.interop.mlbom`)."""
