"""tinygrad's own initializers as named-scheme entries (tinygrad 0.14.0, ``tinygrad/mixin/rand.py``).

tinygrad's initializers are ``Tensor`` class methods taking the shape in torch's layout ``(out, in, *kernel)``; their
docstrings are a link each (to torch's or Keras's docs) and the formula is in the code:

* ``kaiming_uniform(*shape, a=0.01)``: ``bound = (6 / (1 + a ** 2) / prod(shape[1:])) ** 0.5``, then
  ``uniform(low=-bound, high=bound)``; docstring: <https://pytorch.org/docs/stable/_modules/torch/nn/init.html#kaiming_uniform_>.
* ``kaiming_normal(*shape, a=0.01)``: ``std = (2 / (1 + a ** 2) / prod(shape[1:])) ** 0.5``, ``normal(std=std)``;
  docstring: <https://pytorch.org/docs/stable/_modules/torch/nn/init.html#kaiming_normal_>.
* ``glorot_uniform(*shape)``: ``bound = (6 / (shape[0] + prod(shape[1:]))) ** 0.5``; docstring:
  <https://www.tensorflow.org/api_docs/python/tf/keras/initializers/GlorotUniform> (Keras: ``limit = sqrt(6 / (fan_in +
  fan_out))`` with "fan_in is the number of input units in the weight tensor and fan_out is the number of output
  units", i.e. with the receptive field for a kernel).
* ``scaled_uniform(*shape)``: U[-prod(shape)^-1/2, prod(shape)^-1/2) -- no canonical scheme.

``a`` defaults to 0.01 (torch's ``kaiming_*_`` default is 0): the variance is 2/(1.0001 fan_in), the bound and std
0.99995 of He's. For ``kaiming_normal`` that is far inside what n = 1e6 resolves (the std is fitted to ~0.1%): the
default is called. For ``kaiming_uniform`` the 0.005% narrower support sits exactly at the resolution of the canonical
tail test (30 values expected in a window of 6e-5 of the bound, 83% of which lies in the gap): measured 4 and 3 values
(p = 8e-9, 8e-10) on the conv shape and 7 and 6 (p = 1e-6, 2e-7) on the dense shape at the master seed, so the default
would pass or fail by seed either way (with or without a declared convention). The he_uniform row therefore calls
``a=0`` -- He's rectifier, tinygrad's own spelling of it -- and the default's 0.99995 factor is reported, not checked.
With ``a=1`` the gain is 1: LeCun's variance, the same spelling torch's entries use for ``lecun_*``.
"""

from __future__ import annotations

import math

from conformance.areas.named_schemes.laws import Entry, Law

SRC = "tinygrad 0.14.0 tinygrad/mixin/rand.py (https://github.com/tinygrad/tinygrad/blob/master/tinygrad/mixin/rand.py)"
_A = 0.01


def _kaiming_std(a: float):
    return lambda fi, fo: math.sqrt(2.0 / (1.0 + a * a) / fi)


def _kaiming_bound(a: float):
    return lambda fi, fo: math.sqrt(6.0 / (1.0 + a * a) / fi)


_KU = ("kaiming_uniform(*shape, a=0.01): 'bound = (6 / (1 + a ** 2) / prod(argfix(*shape)[1:])) ** 0.5; return "
       "cls.uniform(*shape, low=-bound, high=bound)'; docstring: "
       "<https://pytorch.org/docs/stable/_modules/torch/nn/init.html#kaiming_uniform_>")
_KN = ("kaiming_normal(*shape, a=0.01): 'std = (2 / (1 + a ** 2) / prod(argfix(*shape)[1:])) ** 0.5; return "
       "cls.normal(*shape, mean=0.0, std=std)'; docstring: "
       "<https://pytorch.org/docs/stable/_modules/torch/nn/init.html#kaiming_normal_>")
_GU = ("glorot_uniform(*shape): docstring <https://www.tensorflow.org/api_docs/python/tf/keras/initializers/"
       "GlorotUniform>: 'draws samples from a uniform distribution within [-limit, limit], where limit = sqrt(6 / "
       "(fan_in + fan_out)) (fan_in is the number of input units in the weight tensor and fan_out is the number of "
       "output units)'. The code computes 'bound = (6 / (argfix(*shape)[0]+prod(argfix(*shape)[1:]))) ** 0.5'")

ENTRIES: dict[str, list[Entry]] = {
    "he_uniform": [Entry("tinygrad", "kaiming_uniform",
                         Law("uniform", _kaiming_bound(0.0), "U(+-sqrt(6/fan_in)), a = 0"),
                         _KU + " (called with a=0, He's own rectifier; see the module doc for the default a=0.01)", SRC,
                         {"a": 0.0})],
    "he_normal": [Entry("tinygrad", "kaiming_normal",
                        Law("normal", _kaiming_std(_A), "N(0, 2/((1+a^2) fan_in)), a = 0.01"), _KN, SRC)],
    "lecun_uniform": [Entry("tinygrad", "kaiming_uniform",
                            Law("uniform", _kaiming_bound(1.0), "U(+-sqrt(3/fan_in)), a = 1"),
                            _KU + " (tinygrad has no lecun_*: a = 1 gives gain 1, LeCun's variance)", SRC,
                            {"a": 1.0})],
    "lecun_normal": [Entry("tinygrad", "kaiming_normal",
                           Law("normal", _kaiming_std(1.0), "N(0, 1/fan_in), a = 1"),
                           _KN + " (tinygrad has no lecun_*: a = 1 gives gain 1, LeCun's variance)", SRC,
                           {"a": 1.0})],
    "glorot_uniform": [Entry("tinygrad", "glorot_uniform",
                             Law("uniform", lambda fi, fo: math.sqrt(6.0 / (fi + fo)),
                                 "U(+-sqrt(6/(fan_in+fan_out))) (Keras docs the docstring links)"), _GU, SRC)],
}

#: Why tinygrad has no entry for a scheme.
MISSING = ("tinygrad 0.14.0 Tensor has kaiming_uniform, kaiming_normal, glorot_uniform, scaled_uniform, uniform, "
           "normal (tinygrad/mixin/rand.py): no {scheme} for {framework}")
