"""dl-conformance: a conformance suite for deep-learning backends (init, RNG, activations)."""

__version__ = "0.1.0"
