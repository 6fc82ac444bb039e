"""Golden reference data of the suite, installed as the package ``conformance.goldens.data``.

Nothing here is code: the folders hold JSON fingerprints (``streams/``, ``model_init/``) and the activation
references (``activations/``: npz without pickles and a manifest). :mod:`conformance.goldens.store` reads them
through :mod:`importlib.resources`, so an installed wheel carries them; ``conformance golden update`` is the only
writer (see :func:`conformance.goldens.store.write_dir`).
"""
