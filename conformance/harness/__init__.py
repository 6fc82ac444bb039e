"""What the checks and the adapters share to run things safely, with no framework and no statistics in it.

* :mod:`.processes`: start a child interpreter in its own session, wait with a deadline, kill its whole process
  group, a bounded stderr tail and a one-line description of how it ended (used by :mod:`.children`, the torch
  resume harness and the torch.distributed ranks).
* :mod:`.children`: fresh interpreters that build an adapter by spec, seed it, draw and print a digest (the
  ``processes`` checks).
* :mod:`.files`: the one atomic file writer (reports, golden files, checkpoints) and the report-dir check.
* :mod:`.host`: the host CPU's model name and feature flags (``/proc/cpuinfo``, ``sysctl``).
* :mod:`.junit`: the run's status and ``--strict`` violations as properties and cases of pytest's junit file.
* :mod:`.pickle_scan`: the globals a pickle names, found from its opcodes without executing anything.
* :mod:`.checkpoint_verify`: a checkpoint file's integrity and provenance, checked without loading code.
* :mod:`.checkpoints`: framework-free checkpoint vocabulary: the errors users see, :class:`~.checkpoints.ModelState`,
  provenance.
"""
