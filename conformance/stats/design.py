"""The error budget of a run: family-wise false-alarm rate, per-test alpha, sample sizes, power.

Design (written down in the README and printed in every report):

* A default run performs at most :data:`TEST_BUDGET` statistical tests (every backend,
  dtype and check). Bonferroni: each test runs at ``alpha = FWER / TEST_BUDGET``, so the
  family-wise false-alarm probability of a run is at most :data:`FWER`. The number of
  tests actually performed is counted and reported; a run that exceeds the budget says so.
* Sample sizes are chosen so that, at that alpha, a 1% error in std and a shift of 0.01 std
  are each detected with power at least :data:`TARGET_POWER` for float32 normal and uniform
  references (see :func:`required_n_mean`, :func:`required_n_std`).
* The scale and shift of the schemes PyTorch's own ``test/nn/test_init.py`` tests (normal_, uniform_, xavier_*,
  kaiming_*) are also tested on :data:`LARGE_N` streamed values (mean and variance only, never held in memory):
  at that n a std error of 0.066% (normal) and a shift of 0.00094 std are detected with power 0.99, ten times
  finer than that peer's KS rule (see the README's power table).
"""

from __future__ import annotations

import math

from scipy import stats

#: Designed family-wise false-alarm probability of one default run.
FWER = 1e-3
#: Statistical tests a run may perform within that budget.
TEST_BUDGET = 10_000
#: Per-test significance level.
ALPHA = FWER / TEST_BUDGET
#: Power the default sample sizes guarantee against the design defects.
TARGET_POWER = 0.999
#: Design defects: std ratio 1.01 and a mean shift of 0.01 std.
DESIGN_STD_RATIO = 1.01
DESIGN_SHIFT = 0.01
#: Default sample size of a distribution check.
DEFAULT_N = 1_000_000
#: Sample size of the streamed scale-and-shift check (2^26: the std error it detects with power 0.99 is a tenth of
#: what PyTorch's test_init.py KS rule detects on its largest tensors).
LARGE_N = 2**26


def _z(p: float) -> float:
    return float(stats.norm.isf(p))


def z_alpha(alpha: float = ALPHA) -> float:
    """The two-sided critical z of a test at ``alpha``."""
    return _z(alpha / 2)


def z_power(power: float = TARGET_POWER) -> float:
    """How many standard errors below the design effect an estimate still is with probability ``power``."""
    return _z(1 - power)


def required_n_mean(shift_in_std: float = DESIGN_SHIFT, alpha: float = ALPHA, power: float = TARGET_POWER) -> int:
    """Samples for the two-sided mean z-test to detect ``shift_in_std`` with ``power``."""
    return math.ceil(((_z(alpha / 2) + _z(1 - power)) / shift_in_std) ** 2)


def required_n_std(std_ratio: float = DESIGN_STD_RATIO, kurtosis: float = 3.0,
                   alpha: float = ALPHA, power: float = TARGET_POWER) -> int:
    """Samples for the variance z-test to detect ``std_ratio``; ``kurtosis`` = mu4/sigma^4 (3 normal, 1.8 uniform)."""
    delta = std_ratio**2 - 1.0
    return math.ceil((kurtosis - 1.0) * ((_z(alpha / 2) + _z(1 - power)) / delta) ** 2)


def power_mean(n: int, shift_in_std: float = DESIGN_SHIFT, alpha: float = ALPHA) -> float:
    """Power of the mean z-test (normal approximation)."""
    return float(stats.norm.sf(_z(alpha / 2) - abs(shift_in_std) * math.sqrt(n)))


def power_std(n: int, std_ratio: float = DESIGN_STD_RATIO, kurtosis: float = 3.0, alpha: float = ALPHA) -> float:
    """Power of the variance z-test against ``std_ratio`` (normal approximation, null standard error)."""
    delta = abs(std_ratio**2 - 1.0)
    return float(stats.norm.sf(_z(alpha / 2) - delta * math.sqrt(n / (kurtosis - 1.0))))


def summary(n: int = DEFAULT_N) -> dict[str, float]:
    """The numbers a report prints about the design."""
    return {
        "fwer": FWER,
        "test_budget": TEST_BUDGET,
        "alpha_per_test": ALPHA,
        "n_default": n,
        "power_std_1pct_normal": power_std(n, kurtosis=3.0),
        "power_std_1pct_uniform": power_std(n, kurtosis=1.8),
        "power_shift_0.01std": power_mean(n),
        "n_required_std_1pct_normal": required_n_std(kurtosis=3.0),
        "n_required_shift_0.01std": required_n_mean(),
        "n_large": LARGE_N,
        "power_std_0.1pct_normal_large_n": power_std(LARGE_N, 1.001, kurtosis=3.0),
    }
