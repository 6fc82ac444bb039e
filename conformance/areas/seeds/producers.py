"""Seeds: the random producers every seed check draws from (native samplers, initializers, a module's default
init, the dropout mask), each with the capability it needs (``conformance/suite/test_seeds.py``)."""

from __future__ import annotations

import numpy as np


def random_params(backend, module: str, **config) -> list[str]:
    """Names of ``module``'s parameters whose default init is random for ``backend``: all of them, except those the
    framework's documented default makes deterministic (Flax's and Keras's zero biases; ``framework_default``
    returning an ``Exact``), which are no random producer and would repeat by design."""
    from conformance.areas.init_schemes.spec import Exact
    from conformance.areas.module_defaults.spec import expected_module, framework_default

    names = []
    for name, want in expected_module(module, **config).items():
        own = framework_default(backend.framework, module, name, **config)
        if not isinstance(own[0] if own is not None else want, Exact):
            names.append(name)
    return names


def module_flat(backend, dtype, **config) -> np.ndarray:
    """Every randomly initialized parameter of a default-initialized ``Linear`` (:func:`random_params`), flattened in
    name order."""
    params = backend.module_params("Linear", dtype, **config)
    keep = set(random_params(backend, "Linear", **config))
    return np.concatenate([np.asarray(params[k]).ravel() for k in sorted(params) if k in keep])


#: name -> (capability, draw(backend, dtype, shape)). Each producer draws from the global stream.
PRODUCERS = {
    "sample-uniform": ("sample", lambda b, d, s: b.sample("uniform", s, d)),
    "sample-normal": ("sample", lambda b, d, s: b.sample("normal", s, d)),
    "init-kaiming_uniform": ("init", lambda b, d, s: b.init("kaiming_uniform", s, d, nonlinearity="relu")),
    "init-xavier_normal": ("init", lambda b, d, s: b.init("xavier_normal", s, d)),
    "init-trunc_normal": ("init", lambda b, d, s: b.init("trunc_normal", s, d, std=0.02)),
    "init-orthogonal": ("init", lambda b, d, s: b.init("orthogonal", s, d)),
    "module-Linear": ("modules", lambda b, d, s: module_flat(b, d, in_features=s[-1], out_features=s[0])),
    "dropout-mask": ("dropout", lambda b, d, s: b.dropout_mask(s, 0.5, d)),
}

#: Masks are booleans: independent masks with p = 0.5 agree at half the positions.
MAX_EQUAL = {"dropout-mask": 0.6}


def other_seed(seed: int) -> int:
    """The next seed (mod 2^32)."""
    return (seed + 1) % 2**32
