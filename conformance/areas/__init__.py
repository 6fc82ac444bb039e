"""Spec areas: one package per area holding what it promises (``spec``: definitions with citations), what it
expects (``expect``: arrays in, verdicts out) and its inputs (``inputs``). The suite modules
(:mod:`conformance.suite`) hold only case tables and ``expect`` calls. Model-level init lives in
:mod:`conformance.audit` (its own package: specs, engine, CLI)."""
