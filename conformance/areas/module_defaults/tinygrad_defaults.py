"""tinygrad's own layer defaults where they differ from torch's documented ones (tinygrad 0.14.0,
``tinygrad/nn/__init__.py``, https://github.com/tinygrad/tinygrad/blob/master/tinygrad/nn/__init__.py).

Read from the source:

* ``Linear(in_features, out_features)``: ``bound = 1 / math.sqrt(in_features)``; weight and bias
  ``Tensor.uniform(low=-bound, high=bound)``: torch's rule (None below).
* ``Conv2d`` (and ``Conv1d``, and N-d through a kernel tuple): ``scale = 1 / math.sqrt(in_channels *
  prod(self.kernel_size))``, weight ``(out, in//groups, *k)`` and bias ``U(-scale, scale)``. The docstring points at
  torch's Conv2d, whose k = groups/(C_in * prod(k)); for groups = 1 both agree. For groups > 1 tinygrad's scale ignores
  the groups (the MLX #4536 bug class): that is kept as a deviation (torch's rule stays the expectation and the check
  fails; see the known failure), not declared here as a convention.
* ``ConvTranspose2d``: weight ``(in, out//groups, *k)`` re-drawn with the same ``scale = 1 / sqrt(in_channels *
  prod(k))``; the bias keeps Conv2d's draw with that scale. torch scales both by groups/(C_out * prod(k)) (the fan_in
  of its (in, out/groups, *k) weight). A deliberate formula of tinygrad's (written out again for the transposed
  weight), declared here like MLX's.
* ``Embedding(vocab_size, embed_size)``: ``self.weight = Tensor.glorot_uniform(vocab_size, embed_size)``, i.e.
  U(+-sqrt(6/(vocab_size + embed_size))); torch draws N(0, 1).
* ``LayerNorm``, ``RMSNorm``, ``BatchNorm``: ones and zeros like torch; ``BatchNorm`` keeps ``num_batches_tracked``
  (``Tensor.zeros(dtype='long')``).
"""

from __future__ import annotations

import math

from conformance.areas.init_schemes.spec import Exact, Expectation
from conformance.stats import reference as R

SRC = "tinygrad 0.14.0 tinygrad/nn/__init__.py (https://github.com/tinygrad/tinygrad/blob/master/tinygrad/nn/__init__.py)"


def _kernel(kernel_size, dims: int) -> tuple[int, ...]:
    return tuple(kernel_size) if isinstance(kernel_size, (tuple, list)) else (int(kernel_size),) * dims


def framework_default(framework: str, module: str, param: str, **config) -> tuple[Expectation | Exact, str] | None:
    """tinygrad's default for ``module.param`` where it differs from torch's documented one (see the module doc)."""
    if module.startswith("ConvTranspose") and param in ("weight", "bias"):
        dims = int(module[-2])
        kernel = _kernel(config["kernel_size"], dims)
        c_in = config["in_channels"]
        k = 1.0 / (c_in * math.prod(kernel))
        torch_k = config.get("groups", 1) / (config["out_channels"] * math.prod(kernel))
        if math.isclose(k, torch_k, rel_tol=1e-12):
            return None
        bound = math.sqrt(k)
        return (Expectation(R.uniform(-bound, bound),
                            f"tinygrad nn.{module}.{param}: U(-s, s), s = 1/sqrt(in_channels*prod(kernel_size)) = "
                            f"1/sqrt({c_in}*{math.prod(kernel)}) = {bound:.6g}"),
                f"tinygrad scales {module}.{param} by 1/sqrt(in_channels*prod(kernel)) ({SRC}: 'scale = 1 / "
                "math.sqrt(in_channels * prod(self.kernel_size))'); torch by sqrt(groups/(C_out*prod(kernel)))")
    if module == "Embedding" and param == "weight":
        vocab, dim = config["num_embeddings"], config["embedding_dim"]
        bound = math.sqrt(6.0 / (vocab + dim))
        return (Expectation(R.uniform(-bound, bound),
                            f"tinygrad nn.Embedding.weight: glorot_uniform = U(+-sqrt(6/(vocab_size+embed_size))) = "
                            f"U(+-{bound:.6g})"),
                f"tinygrad draws Embedding.weight with Tensor.glorot_uniform(vocab_size, embed_size) ({SRC}); "
                "torch from N(0, 1)")
    return None
