"""Data screening: find what should not be trained on, and say so as signed evidence.

A screening run reads a dataset only through a hash-on-read handle of its manifest (so the
bytes screened are the bytes its root digest names), checks it against a declared schema and
for duplicates, label conflicts, outliers, class imbalance, drift from a reference, label
issues, backdoor signatures and harmful sources, and reports each check as PASSED, WARNED or
FAILED by thresholds the schema file sets. The CLI (``provenance screen``) signs the outcome
as an in-toto test-result statement plus the figures (``attest/screening.md``) and can write a
sanitised copy of the dataset whose attestation names the screened parent and the screening.

Layout, one job per module: :mod:`.schema` (the schema file), :mod:`.samples` (the loaded
data), :mod:`.tables` and :mod:`.arrays` (readers), :mod:`.result` (a check's verdict),
one module per detector (:mod:`.validation`, :mod:`.duplicates`, :mod:`.outliers`,
:mod:`.balance`, :mod:`.drift`, :mod:`.label_issues`, :mod:`.backdoor`, :mod:`.sources`),
:mod:`.engine` (runs them), :mod:`.sanitize` (writes the derived dataset). numpy,
scikit-learn, cleanlab, pyarrow and torch are imported only inside these modules, never by
the CLI's start-up path.
"""
