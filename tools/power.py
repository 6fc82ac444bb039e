"""Power against the peer: PyTorch's own ``test/nn/test_init.py`` decision rule vs our distribution check.

    python tools/power.py                       # -> reports/power.json, reports/power.md, reports/power.png
    python tools/power.py --readme README.md --docs-png docs/power.png   # nox -s power: also the README table

**Baseline (the peer).** ``test/nn/test_init.py`` (read from pytorch/pytorch, not copied) fills tensors of random
shape and decides with one scipy ``kstest`` per tensor against the expected continuous distribution, passing iff
p > 1e-4; a test case loops over the dims and fails on the first tensor that fails:

* ``peer normal_/uniform_``: dims 1, 2 and 4, each dim ``random.randint(30, 50)`` (``test_normal``,
  ``test_uniform``): the 4-D tensor holds 0.8 to 6.25 million values;
* ``peer xavier/kaiming``: dims 2 and 4, each dim ``random.randint(20, 25)`` (``test_xavier_*``,
  ``test_kaiming_*``): at most 390,625 values.

A case is caught when any of its tensors has p <= 1e-4. Shapes are redrawn in every repetition, like theirs.

**Ours.** Two checks of the suite, both at the design alpha (1e-7 per test):

* ``battery``: :func:`conformance.stats.compare_distribution` on n = 1e6 float32 values, caught when any verdict
  fails (KS, mean, variance, tails, outliers, support, degeneracy); it runs on every random init case;
* ``large-n``: the streamed scale-and-shift check (``test_random_scheme_moments``: ``variance_large`` and
  ``mean_large`` on n = 2^26 values, :mod:`conformance.stats.moments`); it runs on one case of each scheme the peer
  tests (normal_, uniform_, xavier_*, kaiming_*). On those schemes the suite decides with both.

**Effects** (each from the exact reference, simulated with numpy): ``std`` N(0, (1+d)^2) against N(0, 1);
``bound`` U(-(1+d), 1+d) against U(-1, 1) (a range too wide by the factor 1+d); ``shift`` N(d, 1) against N(0, 1).

**Method.** Baseline power: ``--reps`` repetitions (default 200) per grid point. Tensors up to 20,000 values are
drawn and tested with ``scipy.stats.kstest`` exactly; larger ones through their empirical CDF on 2^15 cells that are
equiprobable under the reference (the mass outside a bounded support drawn exactly, the inside counts by the
multinomial's normal approximation with its exact covariance, 5 to 190 expected values per cell, of which the KS
distance only sees cumulative sums), with the KS distance bounded from above by the cell-edge maximum plus one cell,
so the baseline's power is, if anything, overstated; the critical distance is Kolmogorov's limit K(1e-4)/sqrt(n), as
scipy uses for large n. Our power: the analytic power of the decisive test (variance z-test for std, mean z-test for
shift, the exact support test 1 - (1+d)^-n for bound; the other tests can only add power), checked by
``--ours-reps`` (default 10) full simulations of each check at the grid points within a factor 2 of its
threshold. The detectable effect is where the power first reaches 0.99 (peer: log-linear interpolation on the
grid; ours: root of the analytic power). Wall time: median of ``--time-reps`` runs of one decision (drawing the
values included; the peer's ``.tolist()`` included). The peer's curves depend only on the grid, ``--reps`` and
``--seed``: ``--peer-from power.json`` reuses them from an earlier run with the same three (refused otherwise)
and measures ours.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conformance.stats import compare_distribution, design, severity  # noqa: E402
from conformance.stats import procedures as PR  # noqa: E402
from conformance.stats import reference as R  # noqa: E402
from conformance.stats.moments import Moments  # noqa: E402
from tools.readme_markers import replace_between  # noqa: E402

START, END = "<!-- power:start -->", "<!-- power:end -->"
PEER_P = 1e-4
CELLS = 2 ** 15
EXACT_MAX = 20_000
BASELINES = {
    "peer normal_/uniform_ (dims 1, 2, 4; 30-50 per dim)": {"dims": (1, 2, 4), "lo": 30, "hi": 50},
    "peer xavier/kaiming (dims 2, 4; 20-25 per dim)": {"dims": (2, 4), "lo": 20, "hi": 25},
}
EFFECTS = {
    "std": {"label": "std error (ratio - 1)", "grid": np.logspace(-3.5, -0.5, 16)},
    "bound": {"label": "uniform bound error (ratio - 1)", "grid": np.logspace(-7, -1, 19)},
    "shift": {"label": "mean shift (in std)", "grid": np.logspace(-3.5, -0.5, 16)},
}


# -- the effects -----------------------------------------------------------------------------------------------------
def reference(effect: str):
    """(reference distribution for scipy, our Reference)."""
    if effect == "bound":
        return stats.uniform(-1.0, 2.0), R.uniform(-1.0, 1.0)
    return stats.norm(0.0, 1.0), R.normal(0.0, 1.0)


def truth(effect: str, d: float):
    """The faulty distribution with effect size d."""
    if effect == "std":
        return stats.norm(0.0, 1.0 + d)
    if effect == "bound":
        return stats.uniform(-(1.0 + d), 2.0 * (1.0 + d))
    return stats.norm(d, 1.0)


def draw(effect: str, d: float, n: int, rng: np.random.Generator) -> np.ndarray:
    if effect == "std":
        return (1.0 + d) * rng.standard_normal(n)
    if effect == "bound":
        return (1.0 + d) * (2.0 * rng.random(n) - 1.0)
    return d + rng.standard_normal(n)


def draw32(effect: str, d: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Like :func:`draw`, generated in float32 (numpy's float32 samplers): the streamed check's input."""
    if effect == "std":
        return np.float32(1.0 + d) * rng.standard_normal(n, dtype=np.float32)
    if effect == "bound":
        return np.float32(1.0 + d) * (np.float32(2.0) * rng.random(n, dtype=np.float32) - np.float32(1.0))
    return np.float32(d) + rng.standard_normal(n, dtype=np.float32)


# -- the peer's rule -------------------------------------------------------------------------------------------------
_K = float(stats.kstwobign.isf(PEER_P))


def ks_critical(n: int) -> float:
    """D above which the two-sided one-sample KS gives p <= 1e-4 (Kolmogorov's limit, as scipy for large n)."""
    return _K / math.sqrt(n)


class BinnedKS:
    """Upper bound of the KS distance of n draws from ``truth`` vs ``ref``, through the empirical CDF on cells that
    are equiprobable under ``ref``.

    Cell counts: the mass outside a bounded support exactly (multinomial on below / inside / above), the inside
    counts by the multinomial's normal approximation with its exact covariance (n p_j is about 10 to 100 per
    cell for the tensor sizes used here). The distance is bounded from above by the cell-edge maximum plus one
    cell, so the baseline's power is, if anything, overstated.
    """

    def __init__(self, ref, true, bounded: bool, cells: int = CELLS):
        q = np.linspace(0.0, 1.0, cells + 1)
        edges = ref.ppf(q)
        edges[0], edges[-1] = (edges[0], edges[-1]) if bounded else (-np.inf, np.inf)
        inner = np.clip(np.diff(true.cdf(edges)), 0.0, None)
        self.p_in = float(inner.sum())
        self.p_out = (float(true.cdf(edges[0])), float(true.sf(edges[-1]))) if bounded else (0.0, 0.0)
        self.q = inner / self.p_in
        self.sq = np.sqrt(self.q)
        self.g = q

    def distance(self, n: int, rng: np.random.Generator) -> float:
        lo, inside, hi = rng.multinomial(n, [self.p_out[0], self.p_in, self.p_out[1]]) if any(self.p_out) \
            else (0, n, 0)
        z = self.sq * rng.standard_normal(self.q.size)
        counts = inside * self.q + math.sqrt(inside) * (z - self.q * z.sum())
        fn = (lo + np.concatenate([[0.0], np.cumsum(counts)])) / n  # empirical CDF at the inner cell edges
        d = max(np.max(fn[1:] - self.g[:-1]), np.max(self.g[1:] - fn[:-1]))
        return float(max(d, lo / n, hi / n))


def peer_shapes(rng: random.Random, dims, lo: int, hi: int) -> list[tuple[int, ...]]:
    return [tuple(rng.randint(lo, hi) for _ in range(d)) for d in dims]


def peer_rejects(effect: str, d: float, shapes, rng: np.random.Generator, binned: BinnedKS) -> bool:
    ref, _ = reference(effect)
    for shape in shapes:
        n = math.prod(shape)
        if n <= EXACT_MAX:
            p = stats.kstest(draw(effect, d, n, rng), ref.cdf).pvalue
            if p <= PEER_P:
                return True
        elif binned.distance(n, rng) >= ks_critical(n):
            return True
    return False


def peer_power(effect: str, d: float, baseline: dict, reps: int, seed: int) -> float:
    ref, _ = reference(effect)
    binned = BinnedKS(ref, truth(effect, d), bounded=effect == "bound")
    rng, prng = np.random.default_rng(seed), random.Random(seed)
    hits = sum(peer_rejects(effect, d, peer_shapes(prng, baseline["dims"], baseline["lo"], baseline["hi"]), rng,
                            binned) for _ in range(reps))
    return hits / reps


def peer_decision_exact(effect: str, d: float, baseline: dict, rng: np.random.Generator, prng: random.Random) -> bool:
    """The peer's decision exactly as it runs (values drawn, ``.tolist()``, kstest per tensor): for timing."""
    ref, _ = reference(effect)
    for shape in peer_shapes(prng, baseline["dims"], baseline["lo"], baseline["hi"]):
        x = draw(effect, d, math.prod(shape), rng).astype(np.float32)
        if stats.kstest(x.tolist(), ref.cdf).pvalue <= PEER_P:
            return True
    return False


# -- our checks ------------------------------------------------------------------------------------------------------
OURS = {
    "battery": {"label": "ours: battery, n = 1e6 (every random case)", "n": design.DEFAULT_N},
    "large_n": {"label": "ours: + scale/shift, n = 2^26 (the peer's schemes)", "n": design.LARGE_N},
}
CHUNK = 2**22


def ours_analytic(effect: str, d: float, check: str = "battery") -> float:
    """Power of the decisive test of ``check`` (a lower bound of its power); ``large_n`` decides together with the
    battery, so its power is at least the battery's."""
    n = design.DEFAULT_N
    if effect == "bound":
        return 1.0 - (1.0 + d) ** (-n)  # support at n = 1e6: P(at least one of n values outside [-1, 1))
    powers = [design.power_std(n, 1.0 + d, kurtosis=3.0) if effect == "std" else design.power_mean(n, d)]
    if check == "large_n":
        big = OURS["large_n"]["n"]
        powers.append(design.power_std(big, 1.0 + d, kurtosis=3.0) if effect == "std" else design.power_mean(big, d))
    return max(powers)


def ours_detectable(effect: str, target: float = 0.99, check: str = "battery") -> float:
    """Effect at which the analytic power of the decisive test reaches ``target`` (root-finding, not the grid)."""
    from scipy.optimize import brentq

    return float(brentq(lambda d: ours_analytic(effect, d, check) - target, 1e-9, 1.0, xtol=1e-12, rtol=1e-6))


def ours_rejects(effect: str, d: float, rng: np.random.Generator, n: int = design.DEFAULT_N) -> bool:
    """The battery's decision on n float32 values."""
    _, ref = reference(effect)
    x = draw(effect, d, n, rng).astype(np.float32)
    return not all(v.passed for v in compare_distribution(x, ref, "float32", design.ALPHA))


def ours_large_n_rejects(effect: str, d: float, rng: np.random.Generator, n: int = design.LARGE_N) -> bool:
    """The streamed check's decision alone (finite_large, variance_large, mean_large on n float32 values)."""
    _, ref = reference(effect)
    acc = Moments.stream(lambda: draw32(effect, d, CHUNK, rng), n, ref.mean)
    return not all(v.passed for v in PR.moment_verdicts(acc, ref, design.ALPHA))


def ours_empirical(effect: str, d: float, reps: int, seed: int, check: str = "battery") -> float:
    rng = np.random.default_rng(seed)
    if check == "battery":
        return sum(ours_rejects(effect, d, rng) for _ in range(reps)) / reps
    # the suite decides with both checks; the battery's verdict at this d is simulated too
    return sum(ours_large_n_rejects(effect, d, rng) or ours_rejects(effect, d, rng) for _ in range(reps)) / reps


# -- tiers -----------------------------------------------------------------------------------------------------------
def ours_analytic_default(effect: str, d: float) -> float:
    """The default tier's power of the battery: P(the decisive estimate reaches its defect threshold,
    :mod:`conformance.stats.severity`), normal approximation; the support test (``bound``) is exact, so a defect."""
    from scipy.stats import norm

    n = design.DEFAULT_N
    if effect == "bound":
        return ours_analytic(effect, d)
    if effect == "std":
        t, delta, se = severity.variance_threshold(n, 3.0), (1.0 + d) ** 2 - 1.0, math.sqrt(2.0 / n) * (1.0 + d) ** 2
    else:
        t, delta, se = severity.shift_threshold(n), d, 1.0 / math.sqrt(n)
    return float(norm.sf((t - delta) / se) + norm.cdf((-t - delta) / se))


def measure_tiers(reps: int = 10, seed: int = 0) -> dict:
    """The battery's smallest effect detected with power 0.99 in each tier (analytic), simulated ``reps`` times at
    the design effects and at each tier's threshold. The streamed n = 2^26 check judges every failure a defect, so
    its column of the power table holds in both tiers."""
    from scipy.optimize import brentq

    doc: dict = {"reps": reps, "seed": seed, "effects": {}}
    for k, effect in enumerate(("std", "shift")):
        strict = ours_detectable(effect)
        default = float(brentq(lambda d, e=effect: ours_analytic_default(e, d) - 0.99, 1e-9, 1.0, xtol=1e-12))
        design_d = design.DESIGN_STD_RATIO - 1.0 if effect == "std" else design.DESIGN_SHIFT
        points = sorted({round(strict, 6), round(default, 6), design_d})
        sims = {}
        for i, d in enumerate(points):
            rng = np.random.default_rng(seed + 100 * k + i)
            fails = defects = 0
            for _ in range(reps):
                _, ref = reference(effect)
                verdicts = compare_distribution(draw(effect, d, design.DEFAULT_N, rng).astype(np.float32), ref,
                                                "float32", design.ALPHA)
                failing = [v for v in verdicts if not v.passed]
                fails += bool(failing)
                defects += any(severity.judge(v.to_dict(), "float32").severity == severity.DEFECT for v in failing)
            sims[str(d)] = {"strict": fails, "default": defects}
        doc["effects"][effect] = {"label": EFFECTS[effect]["label"], "strict": strict, "default": default,
                                  "design": design_d,
                                  "power_default_at_design": ours_analytic_default(effect, design_d),
                                  "power_strict_at_design": ours_analytic(effect, design_d), "simulated": sims}
    return doc


def tiers_markdown(doc: dict) -> str:
    lines = ["| battery, n = 1e6, float32 | detected with power 0.99: strict tier (any failure) | default tier (a "
             "defect) | power at the design effect: strict / default | simulated failures / defects of "
             f"{doc['reps']} at each effect |", "|---|---|---|---|---|"]
    for e in doc["effects"].values():
        sims = "; ".join(f"{float(d):.3g}: {r['strict']} / {r['default']}" for d, r in e["simulated"].items())
        lines.append(f"| {e['label']} | {_fmt(e['strict'])} | {_fmt(e['default'])} | "
                     f"{e['power_strict_at_design']:.4f} / {e['power_default_at_design']:.4f} | {sims} |")
    return "\n".join(lines) + ("\n\nThe default tier calls a departure a defect when its estimate reaches the "
                               "design effect minus 3.09 standard errors (`conformance/stats/severity.py`); the n = "
                               "2^26 streamed check judges every failure a defect, so the large-n column above holds "
                               "in both tiers. Regenerate: `python tools/power.py --tiers --readme README.md`.")


TIERS_START, TIERS_END = "<!-- power-tiers:start -->", "<!-- power-tiers:end -->"


# -- summaries -------------------------------------------------------------------------------------------------------
def detectable(grid, power, target: float = 0.99) -> float | None:
    """Smallest effect with power >= target (log-linear interpolation between grid points)."""
    grid, power = np.asarray(grid, float), np.asarray(power, float)
    for i, p in enumerate(power):
        if p >= target:
            if i == 0:
                return float(grid[0])
            lo, hi = np.log(grid[i - 1]), np.log(grid[i])
            frac = (target - power[i - 1]) / (p - power[i - 1]) if p > power[i - 1] else 1.0
            return float(np.exp(lo + frac * (hi - lo)))
    return None


def median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _peer_curves(effect: str, k: int, grid, reps: int, seed: int, reuse: dict | None) -> dict[str, list[float]]:
    if reuse is not None:
        e = reuse["effects"][effect]
        return {name: e["curves"][name] for name in BASELINES}
    return {name: [peer_power(effect, float(d), base, reps, seed + 1000 * k + 100 * j + i) for i, d in enumerate(grid)]
            for j, (name, base) in enumerate(BASELINES.items())}


def check_reusable(old: dict, reps: int, seed: int, effects) -> None:
    """Refuse to reuse peer curves measured with another grid, repetition count or seed."""
    for effect in effects:
        e = old.get("effects", {}).get(effect)
        if e is None or not all(name in e["curves"] for name in BASELINES):
            raise SystemExit(f"--peer-from: no peer curves for effect {effect!r}; run without --peer-from")
        if not np.allclose(e["grid"], EFFECTS[effect]["grid"]):
            raise SystemExit(f"--peer-from: the {effect} grid differs from this tool's; run without --peer-from")
    if old.get("reps") != reps or old.get("seed") != seed:
        raise SystemExit(f"--peer-from: measured with reps={old.get('reps')} seed={old.get('seed')}, asked for "
                         f"reps={reps} seed={seed}; run without --peer-from")


def measure(reps: int = 200, ours_reps: int = 10, time_reps: int = 5, seed: int = 0, effects=None,
            peer_from: dict | None = None) -> dict:
    effects = effects or list(EFFECTS)
    if peer_from is not None:
        check_reusable(peer_from, reps, seed, effects)
    doc: dict = {"schema": 2, "method": __doc__.split("**Method.**")[1].split("\n\n")[0].strip(),
                 "reps": reps, "ours_reps": ours_reps, "time_reps": time_reps, "seed": seed,
                 "ours_n": design.DEFAULT_N, "ours_large_n": design.LARGE_N, "ours_alpha": design.ALPHA,
                 "peer_p": PEER_P, "peer_reused": peer_from is not None, "effects": {}}
    for k, effect in enumerate(effects):
        grid = EFFECTS[effect]["grid"]
        e: dict = {"label": EFFECTS[effect]["label"], "grid": grid.tolist(), "detectable": {}, "ours_empirical": {}}
        e["curves"] = _peer_curves(effect, k, grid, reps, seed, peer_from)
        for name in BASELINES:
            e["detectable"][name] = detectable(grid, e["curves"][name])
        for c, check in enumerate(OURS):
            e["curves"][OURS[check]["label"]] = [ours_analytic(effect, float(d), check) for d in grid]
            ours_d = ours_detectable(effect, check=check)
            e["detectable"][check] = ours_d
            if check == "large_n" and effect == "bound":
                continue  # decided by the battery's support test: the same curve
            # each check simulated around its threshold (a factor 2 either side)
            pts = [float(d) for d in grid if ours_d / 2 <= d <= ours_d * 2]
            e["ours_empirical"][check] = {str(d): ours_empirical(effect, d, ours_reps, seed + 7 * i + 1000 * c, check)
                                          for i, d in enumerate(pts)}
        doc["effects"][effect] = e
    # wall time of one decision at a null-ish effect (no early exit for the peer: every tensor is tested)
    rng, prng = np.random.default_rng(seed), random.Random(seed)
    doc["time_s"] = {name: median_time(lambda b=base: peer_decision_exact("std", 0.0, b, rng, prng), time_reps)
                     for name, base in BASELINES.items()}
    doc["time_s"]["battery"] = median_time(lambda: ours_rejects("std", 0.0, rng), time_reps)
    doc["time_s"]["large_n"] = median_time(lambda: ours_large_n_rejects("std", 0.0, rng), time_reps)
    doc["equal_time"] = equal_time(doc["time_s"])
    return doc


def detectable_at_n(effect: str, n: float, target: float = 0.99) -> float:
    """Smallest std error or shift the variance or mean z-test on n values detects with power ``target``."""
    from scipy.optimize import brentq

    fn = (lambda d: design.power_std(int(n), 1.0 + d, kurtosis=3.0)) if effect == "std" else \
        (lambda d: design.power_mean(int(n), d))
    return float(brentq(lambda d: fn(d) - target, 1e-9, 1.0, xtol=1e-12, rtol=1e-6))


def equal_time(times: dict) -> dict:
    """Our streamed check given exactly the peer's wall time: its cost is linear in n (one pass over chunks), so
    n = 2^26 x t_peer / t_large; the std error and shift it detects with power 0.99 at that n."""
    out = {}
    for name in BASELINES:
        n = design.LARGE_N * times[name] / times["large_n"]
        out[name] = {"n": n, "std": detectable_at_n("std", n), "shift": detectable_at_n("shift", n)}
    return out


def _fmt(x: float | None) -> str:
    if x is None:
        return "not reached"
    return f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}"


def _ratio(peer: float | None, ours: float | None) -> str:
    if not peer or not ours:
        return "-"
    r = peer / ours
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x"


def markdown(doc: dict) -> str:
    names = list(BASELINES)
    lines = ["| smallest effect detected with power 0.99 | " + " | ".join(names) + " | "
             + " | ".join(OURS[c]["label"] for c in OURS) + " | peer / ours (normal_ / xavier), battery "
             "| peer / ours (normal_ / xavier), with n = 2^26 |", "|---|" + "---|" * (len(names) + len(OURS) + 2)]
    for e in doc["effects"].values():
        peer = [e["detectable"][n] for n in names]
        ours = [e["detectable"][c] for c in OURS]
        lines.append(f"| {e['label']} | " + " | ".join(_fmt(p) for p in peer) + " | "
                     + " | ".join(_fmt(o) for o in ours) + " | "
                     + " | ".join(" / ".join(_ratio(p, o) for p in peer) for o in ours) + " |")
    t = doc["time_s"]
    lines.append("| wall time per decision (median, this machine) | " + " | ".join(f"{t[n]:.2f} s" for n in names)
                 + f" | {t['battery']:.2f} s | {t['battery']:.2f} s + {t['large_n']:.2f} s | | |")
    eq = doc.get("equal_time")
    if eq:
        std = doc["effects"].get("std", {}).get("detectable", {})
        lines.append("| std error, the streamed check given the peer's time (n = 2^26 x t_peer / t_stream) | "
                     + " | ".join(f"{_fmt(eq[n]['std'])} (n = {eq[n]['n']:.2g})" for n in names) + " | | | | "
                     + " / ".join(_ratio(std.get(n), eq[n]["std"]) for n in names) + " |")
    emp = []
    for effect, e in doc["effects"].items():
        for check, sims in e.get("ours_empirical", {}).items():
            pts = ", ".join(f"{float(d):.2g}: {p * doc['ours_reps']:.0f}/{doc['ours_reps']}" for d, p in sims.items())
            if pts:
                emp.append(f"{effect} ({check}) {pts}")
    note = (f"Peer: PyTorch `test/nn/test_init.py` rule (one scipy KS per tensor, pass iff p > 1e-4, shapes redrawn "
            f"like theirs), {doc['reps']} repetitions per grid point"
            + (" (curves reused from the previous run with the same grid, repetitions and seed)"
               if doc.get("peer_reused") else "")
            + ". Ours: analytic power of the decisive test at alpha 1e-7 (the large-n column: variance_large / "
            "mean_large on 2^26 streamed values, deciding together with the battery); simulated "
            f"({doc['ours_reps']} repetitions, caught/total at effect size): " + "; ".join(emp)
            + ". Wall time: drawing with numpy included; the n = 2^26 check streams 2^22 values at a time, so its "
            "cost is linear in n (the last row gives it exactly the peer's time). "
            "Method and plot: `tools/power.py`, `docs/power.png`. Regenerate: `python3 -m nox -s power`.")
    return "\n".join(lines) + "\n\n" + note


def plot(doc: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    effects = list(doc["effects"])
    fig, axes = plt.subplots(1, len(effects), figsize=(5 * len(effects), 4), squeeze=False)
    for ax, effect in zip(axes[0], effects, strict=True):
        e = doc["effects"][effect]
        for name, power in e["curves"].items():
            ax.semilogx(e["grid"], power, marker="." if name.startswith("peer") else None, label=name)
        for check, sims in e.get("ours_empirical", {}).items():
            if sims:
                ax.semilogx([float(d) for d in sims], list(sims.values()), "k^" if check == "battery" else "kv",
                            label=f"{check}, simulated ({doc['ours_reps']} sims)")
        ax.axhline(0.99, color="grey", lw=0.8, ls="--")
        ax.set_xlabel(e["label"])
        ax.set_ylabel("power")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(effect)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Power: PyTorch test_init.py KS rule vs conformance checks (n = 1e6 battery; n = 2^26 scale/shift; "
                 "alpha 1e-7)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write(doc: dict, out: Path, name: str, md: str) -> str:
    """``out/name.json`` and ``out/name.md``; returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(doc, indent=1))
    (out / f"{name}.md").write_text(md + "\n")
    return md


def update_readme(readme: Path, body: str) -> bool:
    """Replace the text between this tool's README markers; returns True when the file changed."""
    return replace_between(readme, START, END, body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "reports"))
    p.add_argument("--reps", type=int, default=200, help="baseline repetitions per grid point (default 200)")
    p.add_argument("--ours-reps", type=int, default=10, help="full-battery simulations per point (default 10)")
    p.add_argument("--time-reps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--effect", action="append", choices=list(EFFECTS), default=None)
    p.add_argument("--readme", default=None, help="regenerate the table between the power markers in this file")
    p.add_argument("--docs-png", default=None, help="also copy the plot here (e.g. docs/power.png)")
    p.add_argument("--render", default=None, metavar="JSON", help="re-render table and plot from a power.json")
    p.add_argument("--peer-from", default=None, metavar="JSON",
                   help="reuse the peer's curves from a power.json measured with the same grid, --reps and --seed")
    p.add_argument("--tiers", action="store_true",
                   help="only the per-tier power of the battery (default vs strict tier) -> reports/power_tiers.*")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    if args.tiers:
        doc = measure_tiers(args.ours_reps, args.seed)
        doc["elapsed_s"] = round(time.perf_counter() - t0, 1)
        md = _write(doc, Path(args.out), "power_tiers", tiers_markdown(doc))
        print(md)
        if args.readme:
            changed = replace_between(Path(args.readme), TIERS_START, TIERS_END, md)
            print(("updated " if changed else "unchanged ") + args.readme)
        return 0
    if args.render:
        doc = json.loads(Path(args.render).read_text())
        if "large_n" in doc.get("time_s", {}) and "equal_time" not in doc:
            doc["equal_time"] = equal_time(doc["time_s"])
    else:
        peer = json.loads(Path(args.peer_from).read_text()) if args.peer_from else None
        doc = measure(args.reps, args.ours_reps, args.time_reps, args.seed, args.effect, peer)
        doc["elapsed_s"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    md = _write(doc, out, "power", markdown(doc))
    png = plot(doc, out / "power.png")
    if png and args.docs_png:
        Path(args.docs_png).parent.mkdir(parents=True, exist_ok=True)
        Path(args.docs_png).write_bytes(png.read_bytes())
    print(md)
    print(f"elapsed {doc['elapsed_s']} s; plot {png}")
    if args.readme:
        print(("updated " if update_readme(Path(args.readme), md) else "unchanged ") + args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
