"""The conformance checks, one module per area. Run with ``conformance run`` or
``pytest --pyargs conformance.suite``; the plugin parametrizes them over backends and dtypes."""
