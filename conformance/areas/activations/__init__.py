"""Activations: value and derivatives of silu and its relatives against correctly rounded mpmath references.

``spec`` (definitions and mpmath references), ``inputs`` (16-bit bit patterns, float32/float64 sweeps, hypothesis
strategies), ``calls`` (calling a backend on them), ``expect`` (finite, ULP accuracy, exact values, layouts),
``golden`` (the golden references: computing them and loading them through the one golden store),
``hypothesis_profiles`` (the dev/ci/thorough profiles)."""
