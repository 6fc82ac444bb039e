"""Named initializers across frameworks: does "he_normal" draw what He et al. define, and what the docs say?

For each canonical scheme (:data:`conformance.areas.named_schemes.spec.CANONICAL`) and each weight kind (a non-square
dense layer, a convolution), every initializer of the framework under test that carries that name
(:data:`~conformance.areas.named_schemes.spec.ENTRIES`) is called with its default arguments through
:meth:`conformance.backends.base.Backend.named_init`, n = 1e6 values are drawn, and the *same* draw is compared twice:

* ``docs:*`` verdicts against the framework's documented law (quoted, with its source) -- a failure here is a
  failure of the framework;
* ``canonical:*`` verdicts against the paper's definition. Where the framework's docs declare a different
  convention (e.g. JAX's truncated he_normal, MLX's gain of 1), the canonical verdicts are recorded with
  ``observed["convention"]`` and ``observed["canonical_passed"]`` and do not fail the check; instead the check
  requires that the declared difference is really observed (``canonical_difference``).

Each entry adds one ``named_scheme`` verdict and attaches one
:class:`~conformance.report.attachments.NamedSchemeRow`, a row of the report's table (family, formula, fitted std vs
canonical, both verdicts; :mod:`conformance.report.named_table`); a framework without the scheme, an entry the
backend does not expose and an entry whose check raised attach a row saying so.
Float32 only: the question is which formula a name means; dtype behaviour is covered by ``init_schemes``.
"""

from __future__ import annotations

import pytest

from conformance.areas.named_schemes import expect as E
from conformance.areas.named_schemes import spec as N

#: The ``named_init`` capability is checked by the :func:`named_init` fixture rather than ``requires``, so that a
#: backend without it still gets its table rows (with the skip reason).
pytestmark = [pytest.mark.dtypes("float32")]


@pytest.fixture
def named_init(request, backend, conformance) -> None:
    """Skip, as ``@pytest.mark.requires("named_init")`` would and before the dtype, a backend without the
    capability, after attaching the table row that says so."""
    if "named_init" not in backend.capabilities:
        reason = f"{backend.spec} does not declare capability 'named_init'"
        params = request.node.callspec.params
        conformance.attach(E.missing_row(backend, params["scheme"], params["kind"], reason))
        pytest.skip(reason)


@pytest.mark.parametrize("kind", list(N.SHAPES))
@pytest.mark.parametrize("scheme", list(N.CANONICAL))
def test_named_scheme(named_init, backend, dtype, conformance, scheme, kind):
    """The framework's initializer(s) named ``scheme``: documented law (must hold) and canonical law (may differ
    only where the docs declare it)."""
    conformance.expect(E.check_scheme(backend, dtype, conformance, scheme, kind), f"named {scheme} ({kind})")
