"""Initializers (``torch.nn.init``-style schemes and gains): ``spec`` (expected distributions from the
definitions), ``fans`` (fan-in/fan-out and the recommended-gain table: the checks' own oracle), ``expect``
(distribution battery, streamed moments, exact, orthogonal and sparse verdicts)."""
