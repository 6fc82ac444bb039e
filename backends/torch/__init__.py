"""torch-side code behind :mod:`conformance.backends.torch_adapter`, one job per module.

Importing this package imports nothing (and not torch); each module imports the real ``torch`` itself
(absolute imports: ``import torch`` never means this package).

* :mod:`.tensors`: bit-exact torch <-> numpy conversion (``to_numpy``, ``from_numpy``) and ``dtype_name``;
  imports torch lazily, so the adapter module imports without torch.
* :mod:`.models`: the reference model zoo of the init audit (GPT-2, Llama in torchtitan/OLMo/LitGPT naming) and
  the model-building side of ``build_model`` (eager or meta-device, poison fill, snapshot).
* :mod:`.checkpoint_io`: checkpoint files in ``torch.save`` and safetensors formats: atomic save with provenance,
  ``weights_only`` load, digest, key, shape and dtype checks, strict load into a model.
* :mod:`.checkpoint_models`: the reference models of the checkpoint checks (``tiny_tied``, shrunk ``gpt2`` and
  ``llama``), how they are built and what state they hold.
* :mod:`.resume`: the resume harness: a deterministic training loop run straight, interrupted and resumed in fresh
  interpreters, and its traces.
* :mod:`.distributed`: torch.distributed ranks in fresh processes for the rank-consistency checks.
"""
