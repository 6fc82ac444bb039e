"""Named initializers: what the name means in the literature (canonical) and what each framework documents.

Every row of the named-scheme table is a *canonical scheme* (He, Glorot, LeCun, truncated normal) and a
*framework entry*: the framework's own initializer of that name called with its default arguments. Each entry
is checked twice against the same draw:

* **canonical**: the definition in the paper (:data:`CANONICAL`), with the family the name says (``normal``:
  an untruncated Gaussian; ``uniform``: symmetric uniform) and the variance the paper states;
* **documented**: the framework's own documentation (:class:`Entry.documented`, quoted with its source).

Where the framework's docs declare a formula that differs from the canonical one, the entry carries a
``convention`` sentence: the canonical battery is then *expected* to fail (the report shows it as a documented
convention difference); a divergence from the framework's own docs is always a failure.

Fans are those of a weight in the canonical layout ``(out, in, *kernel)``; each adapter translates the layout
(see :mod:`conformance.backends.layouts`), so ``fan_in`` and ``fan_out`` below are the layer's true fans.

Sources (quoted in each entry):

* He et al. 2015, "Delving Deep into Rectifiers", eq. (10): weights N(0, 2/n_l), n_l = k^2 c = fan_in.
* Glorot & Bengio 2010, "Understanding the difficulty...", eq. (16): U[-sqrt(6/(n_j + n_j+1)), +...];
  Var = 2/(fan_in + fan_out) (eq. 12).
* LeCun et al. 1998, "Efficient BackProp", section 4.6: std = m^(-1/2), m = fan_in.
* Truncated normal (e.g. BERT, ViT): N(0, sigma^2) truncated at two standard deviations.
"""

from __future__ import annotations

import dataclasses

from conformance.areas.init_schemes.fans import fans
from conformance.areas.named_schemes import flax_entries, keras_entries, tinygrad_entries
from conformance.areas.named_schemes.core_entries import ENTRIES, MISSING
from conformance.areas.named_schemes.laws import CANONICAL, TN_STD, TRUNC2_STD, Canonical, Entry, Law

__all__ = ["CANONICAL", "ENTRIES", "FRAMEWORK_MODULES", "MISSING", "SHAPES", "TN_STD", "TRUNC2_STD", "Canonical",
           "Entry", "Law", "entries_for", "family", "fans_of", "missing_reason"]

#: Framework families whose entries live in a module of their own, each holding ``ENTRIES: dict[scheme,
#: list[Entry]]`` and ``MISSING: str`` (a template with ``{scheme}`` and ``{framework}``). The family is the backend's
#: framework name up to its first ``-``: ``keras-jax`` and ``keras-torch`` share Keras's entries (each entry is
#: reported under the backend's own framework name), and so does a faulty adapter named ``keras-faulty-...``.
FRAMEWORK_MODULES = {"tinygrad": tinygrad_entries, "keras": keras_entries, "flax": flax_entries,
                     "equinox": flax_entries}


def family(framework: str) -> str:
    """``"keras-jax"`` -> ``"keras"``: the key of :data:`FRAMEWORK_MODULES`."""
    return framework.split("-", 1)[0]


def entries_for(scheme: str, framework: str) -> list[Entry]:
    """The entries of ``framework`` (a backend's framework name) for the canonical ``scheme``."""
    module = FRAMEWORK_MODULES.get(family(framework))
    if module is None:
        return ENTRIES.get(scheme, {}).get(framework, [])
    return [dataclasses.replace(e, framework=framework) for e in module.ENTRIES.get(scheme, [])
            if e.framework == family(framework)]


def missing_reason(scheme: str, framework: str) -> str:
    """Why ``framework`` has no entry for ``scheme`` (the skip reason and the table's note)."""
    module = FRAMEWORK_MODULES.get(family(framework))
    template = MISSING.get(framework) if module is None else module.MISSING
    template = template or "{framework} declares no named initializer for {scheme}"
    return template.format(scheme=scheme, framework=framework)


#: Canonical weight shapes of the table: a non-square dense layer and a convolution with distinct sizes.
SHAPES: dict[str, tuple[int, ...]] = {"dense": (384, 256), "conv2d": (64, 32, 3, 3)}


def fans_of(shape) -> tuple[int, int]:
    return fans(shape)
