"""Golden streams and model-init fingerprints: ``expect`` compares fresh fingerprints with the golden store's
(:mod:`conformance.goldens`)."""
