"""Compare samples with an expected distribution: the full battery, one Verdict per test.

:func:`compare_distribution` is the single entry point the checks use. It picks the
goodness-of-fit test by dtype (KS against the continuous reference for float32/float64,
chi-square against the exact rounded distribution for float16/bfloat16) and adds the
moment, tail, outlier, support and degeneracy tests. The goodness-of-fit verdict carries the report's
distribution plot as a typed attachment (:class:`conformance.report.attachments.DistributionPlot`).
"""

from __future__ import annotations

import numpy as np

from ..report.attachments import DistributionPlot
from . import procedures as P
from .grids import is_sixteen_bit, numpy_dtype
from .reference import ContinuousReference, DiscreteReference, for_dtype
from .sorted_sample import SortedSample
from .summary import plot_summary
from .verdict import Verdict


def as_float64(samples) -> np.ndarray:
    """Flatten any numeric array (bfloat16 included) to float64 exactly."""
    return np.asarray(samples).astype(np.float64).ravel()


def compare_distribution(samples, reference: ContinuousReference, dtype: str, alpha: float) -> list[Verdict]:
    """Every verdict for ``samples`` (drawn in ``dtype``) against ``reference``.

    Statistical tests are skipped (and only the exact ones reported) when the support test
    fails with non-finite values, since moments are meaningless then.

    The finite values are sorted once (:class:`~conformance.stats.sorted_sample.SortedSample`; a float16 or
    bfloat16 sample is counted by bit pattern instead) and shared by the tests that need order statistics or
    counts; the verdicts are those of each procedure on the unsorted values.
    """
    arr = np.asarray(samples)
    x = as_float64(arr)
    ref = for_dtype(reference, dtype)
    if not np.isfinite(x).all():
        return [P.support_test(x, ref), P.constant_test(x, ref)]
    if is_sixteen_bit(dtype) and arr.dtype == numpy_dtype(dtype):
        ordered = SortedSample.of_sixteen_bit(arr)
    else:
        ordered = SortedSample.of_array(x)
    verdicts = [P.support_test(x, ref, ordered=ordered), P.constant_test(x, ref, ordered=ordered)]
    if x.size < 2:
        return verdicts
    if isinstance(ref, DiscreteReference):
        verdicts.append(P.chi2_test(x, ref, alpha, ordered=ordered))
    else:
        verdicts.append(P.ks_test(x, ref, alpha, ordered=ordered))
    verdicts[-1].attachments.append(DistributionPlot(**plot_summary(x, ref, ordered=ordered)))
    verdicts.append(P.mean_test(x, ref, alpha))
    verdicts.append(P.variance_test(x, ref, alpha))
    for side in ("lower", "upper"):
        for proc in (P.tail_test, P.outlier_test):
            v = proc(x, ref, alpha, side, ordered=ordered)
            if v is not None:
                verdicts.append(v)
    return verdicts
