"""The golden store: versioned reference data under ``golden/`` that pins what must not drift between versions.

Layout (schema :data:`~conformance.goldens.store.SCHEMA`)::

    golden/
      streams/<framework>/<framework version>/<device>--<device name>.json     RNG stream fingerprints
      model_init/<framework>/<framework version>/<device>--<device name>.json  reference-model init fingerprints
      activations/manifest.json + *.npz                                        (conformance.areas.activations.golden)

Every fingerprint file is JSON (never pickle) holding ``schema``, ``kind``, ``suite_version``, the ``key`` it pins
(spec, framework, framework version, device, device name - the CPU architecture or the GPU model), ``provenance``
(generator command, suite version, every version the adapter reports, python, platform, date, seed), the
``entries`` and their ``checksum``. :mod:`.store` reads and validates files; :mod:`.fingerprints` computes entries
from adapters; :mod:`.kinds` is the registry of golden kinds behind ``conformance golden update|verify|list``
(:mod:`.cli`), the only way files change.
"""

from .store import SCHEMA, GoldenError, GoldenFile, default_dir, load_file

__all__ = ["SCHEMA", "GoldenError", "GoldenFile", "default_dir", "load_file"]
