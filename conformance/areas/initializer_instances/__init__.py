"""Initializer instances called more than once: what one instance returns on each call, and what layers sharing one
instance get (``conformance/suite/test_initializer_instances.py``)."""
