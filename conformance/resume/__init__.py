"""The resume audit: does a training stack, interrupted and resumed the way it documents, repeat the straight run?

``conformance resume NAME`` runs a harness three times, each in a fresh interpreter:

* **A** (``straight``) trains ``steps`` steps without stopping;
* **B** (``interrupt``) trains ``stop_at`` steps, saves the stack's documented way and exits;
* **C** (``resume``) resumes from B's checkpoint the stack's documented way and trains to ``steps``.

Each run records, before every training forward, the batch, the global and per-generator RNG states, then the
dropout masks, the loss and the learning rate; A and C also record their final parameters and optimizer state.
:mod:`.compare` judges C against A (and B against A, to tell a non-deterministic stack from a bad resume).

Modules: :mod:`.protocol` (the harness contract and the options; framework-free), :mod:`.record` (the torch-side
recorder a harness drives), :mod:`.child` (a run's entry point), :mod:`.runner` (the three processes),
:mod:`.compare` (the verdict; numpy only), :mod:`.harnesses` (the built-in harnesses of real stacks),
:mod:`.findings` (the reviewed causes and the README table), :mod:`.cli` (``conformance resume``).
"""
