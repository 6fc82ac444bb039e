"""Default initialization of layers (torch.nn docs): every parameter and buffer after construction."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.areas.init_schemes import expect
from conformance.areas.init_schemes.spec import Exact
from conformance.areas.module_defaults.spec import ABSENT, expected_module, framework_default

pytestmark = [pytest.mark.requires("modules")]

RANDOM = [
    ("Linear", {"in_features": 300, "out_features": 4000}, "weight"),
    ("Linear", {"in_features": 16, "out_features": 100000}, "bias"),
    ("Linear", {"in_features": 1, "out_features": 100000}, "weight"),
    ("Conv1d", {"in_channels": 8, "out_channels": 4000, "kernel_size": 5}, "weight"),
    ("Conv2d", {"in_channels": 8, "out_channels": 4096, "kernel_size": 3, "groups": 2}, "weight"),
    ("Conv2d", {"in_channels": 4, "out_channels": 100000, "kernel_size": 1}, "bias"),
    ("Conv3d", {"in_channels": 4, "out_channels": 8192, "kernel_size": (3, 3, 2), "groups": 4}, "weight"),
    ("ConvTranspose1d", {"in_channels": 4000, "out_channels": 8, "kernel_size": 5}, "weight"),
    ("ConvTranspose2d", {"in_channels": 4096, "out_channels": 16, "kernel_size": 3, "groups": 2}, "weight"),
    ("ConvTranspose2d", {"in_channels": 4, "out_channels": 100000, "kernel_size": 1}, "bias"),
    ("ConvTranspose3d", {"in_channels": 2048, "out_channels": 8, "kernel_size": 3, "groups": 4}, "weight"),
    ("Embedding", {"num_embeddings": 10000, "embedding_dim": 100}, "weight"),
    ("Embedding", {"num_embeddings": 10001, "embedding_dim": 100, "padding_idx": 3}, "weight"),
]


def _id(module, config, param):
    return f"{module}-{param}-" + "-".join(f"{k}{v}".replace(" ", "").replace(",", "_").replace("(", "")
                                            .replace(")", "") for k, v in config.items())


@pytest.mark.parametrize(("module", "config", "param"), RANDOM, ids=[_id(*c) for c in RANDOM])
def test_random_default(backend, dtype, conformance, module, config, param):
    """Random default init of a parameter matches the documented distribution."""
    want = expected_module(module, **config)[param]
    own = framework_default(backend.framework, module, param, **config)
    convention = ""
    if own is not None:  # the framework's own default differs from torch's: check that one, and say so
        want, convention = own
    padding = config.get("padding_idx")

    def one():
        w = backend.module_params(module, dtype, **config)[param]
        return np.delete(w, padding, axis=0) if padding is not None else w

    if isinstance(want, Exact):
        verdicts = [expect.exact(one(), want, dtype)]
    else:
        verdicts = expect.distribution(conformance.draw(one), want, dtype, conformance.alpha)
    for v in verdicts:
        if convention:
            v.observed["convention"] = convention
    conformance.expect(verdicts)


EXACT = [
    ("Embedding", {"num_embeddings": 50, "embedding_dim": 8, "padding_idx": 3}),
    ("Embedding", {"num_embeddings": 50, "embedding_dim": 8, "padding_idx": -1}),
    ("LayerNorm", {"normalized_shape": (64,)}),
    ("LayerNorm", {"normalized_shape": (4, 8)}),
    ("RMSNorm", {"normalized_shape": (64,)}),
    ("BatchNorm1d", {"num_features": 32}),
    ("BatchNorm2d", {"num_features": 16}),
]


@pytest.mark.parametrize(("module", "config"), EXACT, ids=[_id(m, c, "exact") for m, c in EXACT])
def test_deterministic_default(backend, dtype, conformance, module, config):
    """Deterministic defaults (ones, zeros, the padding row) hold exactly; nothing unexpected is left out."""
    params = backend.module_params(module, dtype, **config)
    verdicts, absent_note = [], []
    for name, want in expected_module(module, **config).items():
        if not isinstance(want, Exact):
            continue
        own = framework_default(backend.framework, module, name, **config)
        if own is not None:
            if own[0] is ABSENT:
                absent_note.append(own[1])
                continue
            want = own[0]
        if name == "weight[padding_idx]":
            value = params["weight"][config["padding_idx"]]
        elif name not in params:
            from conformance.stats import Verdict

            verdicts.append(Verdict("present", False, f"{module} has no {name!r}; got {sorted(params)}"))
            continue
        else:
            value = params[name]
        verdicts.append(expect.exact(value, want, dtype))
        verdicts[-1].observed["what"] = name
    for v in verdicts:
        if absent_note:
            v.observed["convention"] = "; ".join(absent_note)
    conformance.expect(verdicts)
