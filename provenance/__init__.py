"""ml-provenance: make an ML pipeline's supply chain verifiable.

Every dataset, dependency set and checkpoint is named by a content digest; attestations about
those digests are signed and chained, and a verifier refuses anything whose chain is broken.
This top-level module only carries the version so that ``import provenance`` stays cheap: the
CLI's start-up path must not pay for subsystems it does not use.
"""

__version__ = "0.1.0"
