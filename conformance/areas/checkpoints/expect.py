"""Verdicts about checkpoints: a model state before save vs after load, and a straight vs resumed training trace.

Contract: every function takes what adapters report (:class:`~conformance.harness.checkpoints.ModelState`,
trace dicts of numpy arrays, see :meth:`~conformance.backends.base.Backend.resume_run`) and returns exact verdicts
(``pvalue`` None); each message is one line that names the first offending tensor or step, quoting the rule.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from conformance.harness.checkpoints import ModelState
from conformance.stats.verdict import Verdict

#: provenance fields a round trip must carry unchanged
PROVENANCE_KEYS = ("model", "seed", "init", "framework", "versions", "device", "dtype")


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).view(np.uint8).tobytes()


def _first(items: list[str], limit: int = 3) -> str:
    return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _diff_detail(name: str, a: np.ndarray, b: np.ndarray) -> str:
    """``'name': K of N elements differ, max |loaded - saved| ..., max |loaded| ...`` (what garbage looks like)."""
    av, bv = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if av.shape != bv.shape or av.dtype != bv.dtype:
        return f"{name!r}: {bv.dtype}{bv.shape} vs {av.dtype}{av.shape}"
    per = av.dtype.itemsize
    differ = int(np.count_nonzero((av.view(np.uint8).reshape(-1, per) != bv.view(np.uint8).reshape(-1, per)).any(1)))
    extra = ""
    if av.dtype.kind in "fc" or str(av.dtype) == "bfloat16":
        with np.errstate(all="ignore"):
            x, y = av.astype(np.complex128), bv.astype(np.complex128)
            extra = (f", max |loaded - saved| {float(np.nanmax(np.abs(y - x))):.3g}, "
                     f"max |loaded| {float(np.nanmax(np.abs(y))):.3g}") if av.size else ""
    return f"{name!r}: {differ} of {av.size} elements differ{extra}"


def round_trip(saved: ModelState, loaded: ModelState) -> list[Verdict]:
    """Saved model vs the fresh model the checkpoint was loaded into: bits, dtype, shape, strides, ties,
    non-persistent buffers (rebuilt, never saved) and provenance."""
    names = sorted(saved.tensors)
    common = [n for n in names if n in loaded.tensors]
    verdicts = []
    missing = sorted(set(saved.tensors) ^ set(loaded.tensors))
    verdicts.append(Verdict("entries", not missing,
                            f"every state entry of the saved model exists after load ({len(names)} entries)" if
                            not missing else f"entries differ between saved and loaded model: {missing[:5]}",
                            n=len(names)))
    persistent = [n for n in common if saved.tensors[n].kind != "nonpersistent"]
    bad_bits = [_diff_detail(n, saved.tensors[n].array, loaded.tensors[n].array) for n in persistent
                if saved.tensors[n].array.shape != loaded.tensors[n].array.shape
                or _bits(saved.tensors[n].array) != _bits(loaded.tensors[n].array)]
    nbytes = sum(saved.tensors[n].nbytes for n in persistent)
    verdicts.append(Verdict("bitwise", not bad_bits,
                            f"all {len(persistent)} saved tensors ({nbytes} bytes) are bitwise equal after load"
                            if not bad_bits else f"{len(bad_bits)} of {len(persistent)} tensors differ after "
                            f"load (rule: a round trip changes no bit): {_first(bad_bits)}",
                            n=len(persistent), observed={"differ": bad_bits[:10], "bytes": nbytes}))
    for test, attr in (("dtype", "dtype"), ("shape", "shape"), ("strides", "strides")):
        bad = [f"{n!r}: {getattr(saved.tensors[n], attr)} -> {getattr(loaded.tensors[n], attr)}"
               for n in common if tuple(np.atleast_1d(getattr(saved.tensors[n], attr))) !=
               tuple(np.atleast_1d(getattr(loaded.tensors[n], attr)))]
        verdicts.append(Verdict(test, not bad, f"every tensor keeps its {attr} after load" if not bad
                                else f"{len(bad)} tensors change {attr} after load: {_first(bad)}",
                                n=len(common), observed={"changed": bad[:10]}))
    verdicts.append(_aliasing(saved, loaded))
    verdicts.append(_nonpersistent(saved, loaded))
    verdicts.append(_provenance(saved, loaded))
    return verdicts


def _aliasing(saved: ModelState, loaded: ModelState) -> Verdict:
    want = sorted(sorted(g) for g in saved.aliases)
    got = sorted(sorted(g) for g in loaded.aliases)
    ok = want == got
    if ok:
        msg = (f"tied tensors still share storage after load: {want}" if want
               else "no tensors share storage, before or after load")
    else:
        broken = [g for g in want if g not in got]
        new = [g for g in got if g not in want]
        msg = (f"ties broken by load (rule: tied parameters stay one tensor): saved {want}, loaded {got}"
               + (f"; broken {broken}" if broken else "") + (f"; new {new}" if new else ""))
    return Verdict("aliasing", ok, msg, n=len(want), observed={"saved": want, "loaded": got})


def _nonpersistent(saved: ModelState, loaded: ModelState) -> Verdict:
    names = saved.nonpersistent
    problems = []
    for n in names:
        if n in saved.file_keys or n in loaded.file_keys:
            problems.append(f"{n!r} was written to the checkpoint")
        if n not in loaded.tensors:
            problems.append(f"{n!r} missing after load")
        elif _bits(saved.tensors[n].array) != _bits(loaded.tensors[n].array):
            problems.append(_diff_detail(n, saved.tensors[n].array, loaded.tensors[n].array)
                            + " (not recomputed)")
    if not names:
        return Verdict("nonpersistent", True, "the model has no non-persistent buffers", n=0)
    return Verdict("nonpersistent", not problems,
                   f"non-persistent buffers {names} are not saved and equal a fresh build after load"
                   if not problems else "non-persistent buffers (rule: never saved, rebuilt by the model): "
                   + _first(problems), n=len(names), observed={"problems": problems[:10]})


def _provenance(saved: ModelState, loaded: ModelState) -> Verdict:
    wrote, read = saved.provenance or {}, loaded.provenance or {}
    missing = [k for k in PROVENANCE_KEYS if k not in wrote]
    differ = [f"{k}: saved {wrote.get(k)!r}, read {read.get(k)!r}" for k in PROVENANCE_KEYS
              if k in wrote and wrote.get(k) != read.get(k)]
    ok = not missing and not differ
    return Verdict("provenance", ok,
                   f"provenance ({', '.join(PROVENANCE_KEYS)}) stored and read back unchanged: seed "
                   f"{read.get('seed')}, dtype {read.get('dtype')}, device {read.get('device')}" if ok else
                   (f"provenance lacks {missing}; " if missing else "") + _first(differ),
                   observed={k: read.get(k) for k in PROVENANCE_KEYS if k != "versions"})


# -- resume --------------------------------------------------------------------------------------------------------
def _first_diff(a: np.ndarray, b: np.ndarray) -> int | None:
    """Index (along axis 0) of the first row where a and b differ bitwise, or None."""
    if a.shape != b.shape:
        return 0
    for i in range(a.shape[0]):
        if _bits(a[i]) != _bits(b[i]):
            return i
    return None


def _steps_verdict(test: str, what: str, straight: np.ndarray, other: np.ndarray, offset: int, label: str,
                   detail=None) -> Verdict:
    i = _first_diff(straight, other)
    n = int(straight.shape[0]) if straight.ndim else 0
    if i is None:
        return Verdict(test, True, f"{what} of {label} steps {offset}..{offset + n - 1} equal the straight run's, "
                                   "bit for bit", n=n)
    step = offset + i
    extra = detail(i) if detail else ""
    return Verdict(test, False, f"{what} differ from the straight run at step {step}"
                                f"{' (the first step after the resume)' if label == 'resumed' and i == 0 else ''}"
                                f" (rule: a resumed run repeats the straight run bit for bit){extra}",
                   n=n, observed={"first_step": step})


def resume(traces: Mapping[str, Mapping], save_at: int) -> list[Verdict]:
    """Straight run vs resumed run (steps >= ``save_at``), and vs the interrupted run (steps < ``save_at``) when
    that ran as a process of its own."""
    s, r = traces["straight"], traces["resumed"]
    k = save_at
    verdicts = []
    if traces.get("interrupted") is not None:  # the interrupted run was a process of its own
        i = traces["interrupted"]
        before = all(_first_diff(s[key][:k], i[key]) is None for key in ("loss", "batch", "mask"))
        verdicts.append(Verdict("determinism", before,
                                f"two fresh processes agree on steps 0..{k - 1} (losses, batches, dropout masks)"
                                if before else "the loop is not deterministic: the interrupted run differs from "
                                f"the straight run before step {k}, so resume exactness cannot be judged", n=k))
    steps_ok = list(map(int, r["step"])) == list(range(k, len(s["step"])))
    verdicts.append(Verdict("steps", steps_ok, f"the resumed run continues at step {k} and stops at "
                            f"{len(s['step']) - 1}" if steps_ok else
                            f"the resumed run ran steps {list(map(int, r['step']))[:3]}..., expected {k}.."
                            f"{len(s['step']) - 1}", n=len(r["step"])))
    if not steps_ok:
        return verdicts
    sb = s["batch"]

    def which_batch(j: int) -> str:
        got = r["batch"][j]
        same = [t for t in range(sb.shape[0]) if np.array_equal(sb[t], got)]
        where = f"; it is the batch the straight run drew at step {same[0]}" if same else ""
        return f": resumed batch {got.tolist()} vs straight {sb[k + j].tolist()}{where}"

    def mask_detail(j: int) -> str:
        a = np.unpackbits(s["mask"][k + j])
        b = np.unpackbits(r["mask"][j])
        return f": {int(np.count_nonzero(a != b))} of {a.size} mask elements differ"

    def loss_detail(j: int) -> str:
        return f": loss {float(r['loss'][j])!r} vs {float(s['loss'][k + j])!r}"

    verdicts.append(_steps_verdict("batch_order", "batch indices", sb[k:], r["batch"], k, "resumed", which_batch))
    verdicts.append(_steps_verdict("dropout_masks", "dropout masks", s["mask"][k:], r["mask"], k, "resumed",
                                   mask_detail))
    verdicts.append(_steps_verdict("losses", "losses", s["loss"][k:], r["loss"], k, "resumed", loss_detail))
    verdicts.append(_steps_verdict("learning_rates", "learning rates", s["lr"][k:], r["lr"], k, "resumed"))
    for test, key, what in (("parameters", "params", "final parameters"),
                            ("optimizer_state", "optim", "final optimizer state")):
        a, b = s[key], r[key]
        bad = sorted(n for n in set(a) | set(b) if n not in a or n not in b or _bits(a[n]) != _bits(b[n])
                     or a[n].shape != b[n].shape)
        verdicts.append(Verdict(test, bool(a) and not bad,
                                f"{what} ({len(a)} tensors) equal the straight run's, bit for bit" if a and not bad
                                else f"{what} differ from the straight run's in {len(bad)} of {len(a)} tensors: "
                                f"{bad[:4]}" if bad else f"no {what} were reported", n=len(a)))
    return verdicts


# -- helpers of the checkpoint checks: what a backend can do, and loading without hiding a refusal -------------------
def require_supported(backend, model: str, fmt: str) -> None:
    """Skip (with the reason) unless ``backend`` writes ``fmt`` and builds reference model ``model``."""
    import pytest

    formats = backend.checkpoint_formats()
    if fmt not in formats:
        pytest.skip(f"{backend.spec} does not write {fmt!r} checkpoints (formats: {', '.join(formats)})")
    if model not in backend.checkpoint_models():
        pytest.skip(f"{backend.spec} has no reference model {model!r}")


def provenance_expected(saved) -> dict:
    """The provenance fields a loader of ``saved`` (a :class:`ModelState`) must find unchanged."""
    return {k: saved.provenance[k] for k in ("model", "seed", "init", "dtype", "device", "versions")
            if k in saved.provenance}


def load_or_fail(conformance, backend, path, model, fmt, dtype, **kwargs):
    """Load, turning a refusal of a good checkpoint into a failed verdict (the message names file and key)."""
    from conformance.harness.checkpoints import CheckpointError

    try:
        return backend.load_checkpoint(path, model, fmt, dtype, **kwargs)
    except CheckpointError as exc:
        conformance.expect(Verdict("load", False, f"loading a checkpoint just saved failed: {exc}"))


def provenance_refusals(backend, path, model: str, fmt: str, dtype: str, saved, seed: int) -> list[Verdict]:
    """Load ``path`` expecting a wrong seed, init spec and dtype in turn: each must be refused with a
    ``ProvenanceMismatch`` naming that field."""
    from conformance.harness.checkpoints import ProvenanceMismatch

    verdicts = []
    for name, wrong in (("seed", seed + 1), ("init", "some other init spec"),
                        ("dtype", "float64" if dtype != "float64" else "float32")):
        try:
            backend.load_checkpoint(path, model, fmt, dtype, expect={name: wrong})
        except ProvenanceMismatch as exc:
            ok = exc.key == name
            verdicts.append(Verdict(f"refuses_{name}", ok, f"expecting {name}={wrong!r} against stored "
                                    f"{saved.provenance.get(name)!r}: refused" + ("" if ok else
                                                                                 f" but naming {exc.key!r}")
                                    + f" ({exc})"))
        else:
            verdicts.append(Verdict(f"refuses_{name}", False, f"a loader expecting {name}={wrong!r} accepted a "
                                    f"checkpoint that records {saved.provenance.get(name)!r}"))
    return verdicts
