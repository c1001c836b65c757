"""The verifier: walks an artifact's attestation chain under a policy and says yes or why not."""
