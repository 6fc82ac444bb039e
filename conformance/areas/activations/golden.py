"""Golden references of the activation checks: correctly rounded value and derivatives from mpmath.

Files (under ``golden/activations/``, npz written with ``allow_pickle=False``):

``exhaustive_float16.npz``, ``exhaustive_bfloat16.npz``
    For all 65,536 bit patterns x (in bit-pattern order), per activation ``name`` and output ``out``
    (``value``, ``grad``; swiglu: ``value``, ``grad_x``, ``grad_y``), the array ``name.out`` holds the
    *bit patterns* (uint16) of the correctly rounded reference. Entries at NaN/inf inputs are 0 and
    unused. ``swiglu.y`` holds swiglu's second input (:func:`conformance.areas.activations.inputs.swiglu_y`).
``sweep_float32.npz``, ``sweep_float64.npz``
    ``x``: bit patterns of :func:`conformance.areas.activations.inputs.sweep_points`; ``name.out``: bit patterns
    of the references; ``name.out.kappa``: float32 relative condition number ``|x g'(x) / g(x)|`` of each
    output g (used by the accuracy tolerance; see :mod:`conformance.suite.test_activations`).
``manifest.json``
    ``schema``, provenance (generator command, mpmath and numpy versions, date, working precision),
    the functions and parameters, and the sha256 of every npz file.

Method: every output is evaluated in mpmath at 60 digits
(:mod:`conformance.areas.activations.spec`) and rounded **once** straight from the mpmath number onto the
target grid with integer arithmetic (:func:`conformance.areas.activations.spec.round_all`), so there is no
double-rounding hazard (no intermediate float64). Values within 2^64 units of the working precision
of a rounding tie are recomputed at 120 and 240 digits (Ziv). The run uses every CPU through
``multiprocessing``.

Regenerate, explicitly and atomically (each file written to a temporary name, then ``os.replace``)::

    python -m conformance.areas.activations.golden update            # all files
    python -m conformance.areas.activations.golden update --only float16
    python -m conformance.areas.activations.golden check             # validate what is on disk

Loading never regenerates: a missing, corrupt or outdated file raises :class:`GoldenError` naming the
file and this command.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import mpmath
import numpy as np

from conformance.goldens import store
from conformance.goldens.store import GoldenError

from . import inputs, spec

SCHEMA = 1
MANIFEST = "manifest.json"
REGENERATE = "conformance golden update --only activations"
EXHAUSTIVE_DTYPES = ("float16", "bfloat16")
SWEEP_DTYPES = ("float32", "float64")
_UINT = {"float16": np.uint16, "bfloat16": np.uint16, "float32": np.uint32, "float64": np.uint64}


def golden_dir() -> Path:
    """The activation goldens read by default: ``activations/`` of :func:`conformance.goldens.store.default_dir`."""
    return store.default_dir() / "activations"


def file_name(dtype: str) -> str:
    return f"exhaustive_{dtype}.npz" if dtype in EXHAUSTIVE_DTYPES else f"sweep_{dtype}.npz"


# -- computing -------------------------------------------------------------------------------------------------------
def kappa(name: str, x: float, y: float | None, outputs: tuple) -> list[float]:
    """|x g'(x)/g(x)| for each output g, by a central difference at 60 digits (step 1e-20 |x|)."""
    with mpmath.workdps(spec.DPS):
        xm = mpmath.mpf(x)
        if xm == 0:
            return [0.0] * len(outputs)
        h = abs(xm) * mpmath.mpf("1e-20")

        def outs(t):
            return spec.swiglu(t, y) if name == "swiglu" else spec.value_and_grad(name, t, **spec.DEFAULT_PARAMS.get(
                name, {}))

        lo, mid, hi = outs(xm - h), outs(xm), outs(xm + h)
        out = []
        for a, g, b in zip(lo, mid, hi, strict=True):
            if g == 0:
                out.append(0.0 if a == b else float("inf"))
            else:
                out.append(float(abs(xm * (b - a) / (2 * h) / g)))
        return out


def cached_kappa(name: str, x: float, y: float | None, outputs: tuple) -> list[float]:
    """:func:`kappa`, memoized on the exact inputs (keyed on the C99 hex form of ``x`` and ``y``, so -0.0 and +0.0
    are distinct keys): bit for bit the same floats. Returns a fresh list."""
    return list(_cached_kappa(name, float(x).hex(), None if y is None else float(y).hex(), tuple(outputs)))


@lru_cache(maxsize=spec.CACHE_SIZE)
def _cached_kappa(name: str, x_hex: str, y_hex: str | None, outputs: tuple) -> tuple[float, ...]:
    return tuple(kappa(name, float.fromhex(x_hex), None if y_hex is None else float.fromhex(y_hex), outputs))


def _work(job: tuple) -> tuple:
    """One chunk: (name, dtype, x values (float64), y values or None, with_kappa) -> (refs, kappas)."""
    name, dtype, xs, ys, with_kappa = job
    params = spec.DEFAULT_PARAMS.get(name, {})
    refs, kappas = [], []
    for i, x in enumerate(xs):
        y = None if ys is None else float(ys[i])
        refs.append(spec.reference_point(name, float(x), dtype, y=y, **params))
        if with_kappa:
            kappas.append(kappa(name, float(x), y, spec.OUTPUTS[name]))
    return refs, kappas


def compute(dtype: str, names=spec.ALL, processes: int | None = None, log=print) -> dict[str, np.ndarray]:
    """All arrays of one golden file (see the module doc)."""
    exhaustive = dtype in EXHAUSTIVE_DTYPES
    uint = _UINT[dtype]
    x = inputs.all_bit_patterns(dtype) if exhaustive else inputs.sweep_points(dtype)
    x64 = x.astype(np.float64)
    finite = np.isfinite(x64)
    idx = np.flatnonzero(finite)
    y = inputs.swiglu_y(x.size, dtype)
    arrays: dict[str, np.ndarray] = {} if exhaustive else {"x": inputs.bits_of(x).copy()}
    arrays["swiglu.y"] = inputs.bits_of(y).copy()
    chunk = 512
    with multiprocessing.Pool(processes) as pool:
        for name in names:
            t0 = time.time()
            jobs = [(name, dtype, x64[idx[i:i + chunk]], y.astype(np.float64)[idx[i:i + chunk]] if name == "swiglu"
                     else None, not exhaustive) for i in range(0, idx.size, chunk)]
            results = pool.map(_work, jobs)
            refs = np.array([r for part, _ in results for r in part], dtype=np.float64)
            for k, out in enumerate(spec.OUTPUTS[name]):
                full = np.zeros(x.size, dtype=np.float64)
                full[idx] = refs[:, k]
                with np.errstate(over="ignore"):
                    rounded = full.astype(x.dtype)  # exact: every reference is already on the grid
                if not np.array_equal(rounded.astype(np.float64), full):
                    raise AssertionError(f"{name}.{out} in {dtype}: a reference is not on the grid")
                arrays[f"{name}.{out}"] = rounded.view(uint).copy()
                if not exhaustive:
                    kap = np.zeros(x.size, dtype=np.float64)
                    kap[idx] = [kp[k] for _, ks in results for kp in ks]
                    with np.errstate(over="ignore"):
                        arrays[f"{name}.{out}.kappa"] = kap.astype(np.float32)
            log(f"  {dtype} {name}: {idx.size} points in {time.time() - t0:.1f} s")
    return arrays


# -- writing ---------------------------------------------------------------------------------------------------------
def _atomic_write(path: Path, data: bytes) -> None:
    from conformance.harness.files import atomic_write

    atomic_write(path, data)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def _sweep_digest(dtype: str) -> str:
    return hashlib.sha256(inputs.bits_of(inputs.sweep_points(dtype)).tobytes()).hexdigest()


def update(dtypes=EXHAUSTIVE_DTYPES + SWEEP_DTYPES, directory: Path | None = None, processes: int | None = None,
           argv: list[str] | None = None, log=print) -> dict:
    """Regenerate the golden files of ``dtypes`` and rewrite the manifest (each write atomic). ``directory``
    defaults to ``activations/`` of :func:`conformance.goldens.store.write_dir` (never an installed package)."""
    directory = Path(directory) if directory is not None else store.write_dir() / "activations"
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("schema") != SCHEMA:
            manifest = {}
    except (FileNotFoundError, json.JSONDecodeError):
        manifest = {}
    files = dict(manifest.get("files", {}))
    for dtype in dtypes:
        t0 = time.time()
        log(f"computing {file_name(dtype)} ...")
        data = _npz_bytes(compute(dtype, processes=processes, log=log))
        _atomic_write(directory / file_name(dtype), data)
        files[file_name(dtype)] = {
            "dtype": dtype, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "kind": "exhaustive" if dtype in EXHAUSTIVE_DTYPES else "sweep",
            "seconds": round(time.time() - t0, 1), "mpmath": mpmath.__version__,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **({"sweep_sha256": _sweep_digest(dtype)} if dtype in SWEEP_DTYPES else {}),
        }
        log(f"wrote {directory / file_name(dtype)} ({len(data):,} bytes, {time.time() - t0:.0f} s)")
    manifest = {
        "schema": SCHEMA,
        "provenance": {
            "generator": "python -m conformance.areas.activations.golden " + " ".join(argv if argv is not None
                                                                                 else ["update"]),
            "mpmath": mpmath.__version__, "mpmath_backend": mpmath.libmp.BACKEND, "numpy": np.__version__,
            "python": sys.version.split()[0],
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "working_digits": spec.DPS,
            "method": "mpmath at 60 digits, rounded once to the target grid with integer arithmetic "
                      "(ties to even), Ziv retry at 120/240 digits near ties",
        },
        "functions": list(spec.ALL), "outputs": {k: list(v) for k, v in spec.OUTPUTS.items()},
        "params": spec.DEFAULT_PARAMS, "gelu_tanh_kappa": spec.GELU_TANH_KAPPA,
        "swiglu_y_cycle": list(inputs.Y_CYCLE),
        "files": files,
    }
    _atomic_write(manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return manifest


# -- loading ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Golden:
    """One golden file: inputs ``x`` (dtype array), ``finite`` mask, references and condition numbers."""

    dtype: str
    x: np.ndarray
    finite: np.ndarray
    y: np.ndarray
    refs: dict[str, dict[str, np.ndarray]]  # name -> output -> reference (dtype array)
    kappa: dict[str, dict[str, np.ndarray]]  # name -> output -> float64 (empty for exhaustive files)
    path: Path


def _fail(path: Path, why: str) -> GoldenError:
    return GoldenError(f"golden file {path}: {why}. Regenerate it explicitly with `{REGENERATE}` "
                       "(and review the diff before committing).")


def _manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise _fail(path, "does not exist") from None
    except json.JSONDecodeError as exc:
        raise _fail(path, f"is not valid JSON ({exc})") from None
    if manifest.get("schema") != SCHEMA:
        raise _fail(path, f"has schema {manifest.get('schema')!r}, this suite reads schema {SCHEMA}")
    missing = set(spec.ALL) - set(manifest.get("functions", []))
    if missing:
        raise _fail(path, f"is outdated: it lacks {sorted(missing)}")
    if manifest.get("params") != spec.DEFAULT_PARAMS or manifest.get("swiglu_y_cycle") != list(inputs.Y_CYCLE):
        raise _fail(path, "is outdated: parameters or swiglu inputs differ from the suite's")
    return manifest


def load(dtype: str, directory: Path | None = None) -> Golden:
    """The validated golden file of ``dtype`` (cached per directory); raises
    :class:`~conformance.goldens.store.GoldenError` naming the problem. ``directory`` defaults to
    :func:`golden_dir`."""
    return _load(dtype, Path(directory) if directory is not None else golden_dir())


@cache
def _load(dtype: str, directory: Path) -> Golden:
    manifest = _manifest(directory)
    path = directory / file_name(dtype)
    info = manifest.get("files", {}).get(path.name)
    if info is None:
        raise _fail(path, "is not listed in the manifest")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail(path, "does not exist") from None
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise _fail(path, "is corrupt (sha256 differs from the manifest)")
    if dtype in SWEEP_DTYPES and info.get("sweep_sha256") != _sweep_digest(dtype):
        raise _fail(path, "is outdated: the sweep points changed since it was generated")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - any decoding problem is a corrupt file
        raise _fail(path, f"cannot be read ({exc!r})") from None
    uint = _UINT[dtype]
    if dtype in EXHAUSTIVE_DTYPES:
        x = inputs.all_bit_patterns(dtype)
    else:
        x = inputs.from_bits(arrays.get("x", np.zeros(0, uint)).astype(uint), dtype)
    refs: dict[str, dict[str, np.ndarray]] = {}
    kappa: dict[str, dict[str, np.ndarray]] = {}
    for name in spec.ALL:
        for out in spec.OUTPUTS[name]:
            key = f"{name}.{out}"
            if key not in arrays or arrays[key].dtype != uint or arrays[key].shape != x.shape:
                raise _fail(path, f"is outdated or corrupt: array {key!r} missing or malformed")
            refs.setdefault(name, {})[out] = inputs.from_bits(arrays[key], dtype)
            if dtype in SWEEP_DTYPES:
                kappa.setdefault(name, {})[out] = arrays[f"{key}.kappa"].astype(np.float64)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(x.astype(np.float64))
    return Golden(dtype, x, finite, inputs.from_bits(arrays["swiglu.y"], dtype), refs, kappa, path)


def check(directory: Path | None = None) -> list[str]:
    """Validate every golden file; return the problems (empty when all are fine)."""
    directory = Path(directory) if directory is not None else golden_dir()
    problems = []
    for dtype in EXHAUSTIVE_DTYPES + SWEEP_DTYPES:
        try:
            _load.__wrapped__(dtype, directory)
        except GoldenError as exc:
            problems.append(str(exc))
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m conformance.areas.activations.golden", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("update", help="regenerate golden files (atomic writes)")
    up.add_argument("--only", action="append", choices=EXHAUSTIVE_DTYPES + SWEEP_DTYPES,
                    help="regenerate only this dtype's file (repeatable)")
    up.add_argument("--processes", type=int, default=None, help="worker processes (default: every CPU)")
    up.add_argument("--dir", type=Path, default=None, help="output directory (default: golden/activations of the "
                    "checkout, or of $CONFORMANCE_GOLDEN_DIR)")
    ck = sub.add_parser("check", help="validate the golden files on disk")
    ck.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "update":
        update(tuple(args.only) if args.only else EXHAUSTIVE_DTYPES + SWEEP_DTYPES, args.dir, args.processes,
               argv=argv)
        return 0
    problems = check(args.dir)
    for p in problems:
        print(p, file=sys.stderr)
    print("golden activations: OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
