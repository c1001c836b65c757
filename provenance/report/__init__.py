"""Reports for people: an artifact's lineage as a graph, a terminal tree, an HTML audit page.

:mod:`~provenance.report.lineage` turns a verification report (or, without a policy, the
unverified chain) and the evidence behind it into a graph of artifacts, the steps and checks
that attestations describe, and their sources; :mod:`~provenance.report.layout` places it;
:mod:`~provenance.report.tree` and :mod:`~provenance.report.html` draw it. Everything shown is
taken from attestations, which are untrusted input: drawing escapes it, never interprets it.
"""
