"""Hypothesis profiles of the conformance suite, registered in one place.

==========  =====================================================================================================
profile     use
==========  =====================================================================================================
``dev``     default on a workstation: 60 examples per check, seeded from the check's conformance seed (so a
            run repeats exactly for the same ``--conformance-seed``), no example database.
``ci``      selected automatically when the environment has ``CI=true``: derandomized (fixed examples for a
            given hypothesis version), 100 examples, no deadline, no database.
``thorough`` 2,000 examples per check, for nightly or pre-release runs.
==========  =====================================================================================================

Choose one explicitly with hypothesis's own option, ``conformance run -- --hypothesis-profile thorough`` (or
``pytest --hypothesis-profile ...``), which wins, or with ``HYPOTHESIS_PROFILE=thorough``. A profile of another
name given with ``--hypothesis-profile`` (registered by the user's own conftest) is honoured as it is. Deadlines
are off everywhere: an adapter call may compile a kernel on first use. :func:`load` is called by the checks that
use hypothesis; :func:`active` returns the profile name in effect.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILES = ("dev", "ci", "thorough")
_COMMON = {"deadline": None, "database": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]}



def register() -> None:
    """Register the three profiles with hypothesis (idempotent)."""
    settings.register_profile("dev", max_examples=60, **_COMMON)
    settings.register_profile("ci", max_examples=100, derandomize=True, **_COMMON)
    settings.register_profile("thorough", max_examples=2000, **_COMMON)


register()


def active(config=None) -> str:
    """``--hypothesis-profile`` of the pytest ``config`` if given, else ``$HYPOTHESIS_PROFILE`` if set, else ``ci``
    when ``CI=true``, else ``dev``."""
    chosen = _option(config)
    if chosen:
        return chosen
    name = os.environ.get("HYPOTHESIS_PROFILE")
    if name:
        if name not in PROFILES:
            raise ValueError(f"HYPOTHESIS_PROFILE={name!r}: expected one of {', '.join(PROFILES)}")
        return name
    return "ci" if os.environ.get("CI", "").lower() == "true" else "dev"


def _option(config) -> str | None:
    if config is None:
        return None
    try:
        return config.getoption("hypothesis_profile")
    except ValueError:  # hypothesis's pytest plugin is not loaded
        return None


def load(config=None) -> str:
    """Load the active profile (see :func:`active`) and return its name. A profile chosen with
    ``--hypothesis-profile`` was loaded by hypothesis's own plugin already and is left as it is."""
    name = active(config)
    if not _option(config):
        settings.load_profile(name)
    return name
