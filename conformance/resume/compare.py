"""The verdict of a resume audit: the resumed run C against the straight run A, step by step (numpy only).

Contract
--------
* :func:`load_trace` reads ``trace-<mode>.npz`` (``allow_pickle=False``) and its JSON sidecar into a
  :class:`Trace`: per recorded entry the step number, batch, RNG states, dropout masks, loss and LR; the final
  parameters and optimizer state.
* :func:`judge` checks the harness kept the protocol (A recorded steps ``0..steps-1``, B ``0..stop_at-1``; a
  violation is a :class:`~conformance.resume.protocol.HarnessError`), then whether B repeats A before ``stop_at``
  (``deterministic``: when it does not, resume exactness cannot be judged and the verdict says so), then walks C's
  entries against A's steps ``stop_at..steps-1``. Everything compares bit for bit; losses and LRs are shown as
  ``float.hex``. The first step where anything differs is ``first_divergent_step``; ``diverged`` names what
  differs there (among :data:`~conformance.resume.protocol.STEP_FIELDS`) and then ``params``/``optimizer`` when
  the final state differs. For a diverging batch or RNG state, the step of A that drew the same batch or had the
  same state is named when there is one ("C step 12's batch = A step 4's").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .protocol import FINAL_FIELDS, STEP_FIELDS, HarnessError, Options


@dataclass
class Trace:
    """One run's record (see :mod:`conformance.resume.record`)."""

    steps: list[int]
    loss: np.ndarray  # float64; NaN where not recorded (see loss_recorded)
    lr: np.ndarray
    loss_recorded: np.ndarray  # bool
    lr_recorded: np.ndarray
    entries: list[dict[str, Any]]  # {"batch": {path: array}, "rng": {name: array}, "dropout": array | None}
    params: dict[str, np.ndarray] = field(default_factory=dict)
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def load_trace(directory: Path, mode: str) -> Trace:
    directory = Path(directory)
    meta_path = directory / f"trace-{mode}.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    with np.load(directory / f"trace-{mode}.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    steps = [int(s) for s in arrays.pop("step")]
    entries: list[dict[str, Any]] = [{"batch": {}, "rng": {}, "dropout": None} for _ in steps]
    recorded = {k: arrays.pop(f"{k}_recorded", None) for k in ("loss", "lr")}
    loss, lr = arrays.pop("loss"), arrays.pop("lr")
    trace = Trace(steps, loss, lr, recorded["loss"] if recorded["loss"] is not None else ~np.isnan(loss),
                  recorded["lr"] if recorded["lr"] is not None else ~np.isnan(lr), entries, meta=meta)
    for key, a in arrays.items():
        head, _, rest = key.partition("/")
        if head == "param":
            trace.params[rest] = a
        elif head == "optimizer":
            trace.optimizer[rest] = a
        elif head.startswith("e") and head[1:].isdigit():
            kind, _, name = rest.partition("/")
            entry = entries[int(head[1:])]
            if kind == "dropout":
                entry["dropout"] = a
            else:
                entry[kind][name] = a
    return trace


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _same_dict(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    """Keys whose arrays differ (or exist on one side only)."""
    return sorted(k for k in set(a) | set(b) if k not in a or k not in b or not _same(a[k], b[k]))


def _same_float(x: float, y: float) -> bool:
    return np.float64(x).tobytes() == np.float64(y).tobytes()


def hexf(x: float, recorded: bool = True) -> str:
    """``float.hex`` (``nan``/``inf`` as such); ``not recorded`` when the run recorded no value."""
    return float(x).hex() if recorded else "not recorded"


def _step_diff(a: Trace, i: int, c: Trace, j: int) -> dict[str, str]:
    """What differs between entry ``i`` of A and entry ``j`` of C: field -> one line."""
    ea, ec = a.entries[i], c.entries[j]
    out: dict[str, str] = {}
    if a.steps[i] != c.steps[j]:
        out["steps"] = f"recorded as step {c.steps[j]} (A's step {a.steps[i]})"
    keys = _same_dict(ea["batch"], ec["batch"])
    if keys:
        out["batch"] = f"batch differs in {', '.join(keys[:4])}"
    keys = _same_dict(ea["rng"], ec["rng"])
    if keys:
        out["rng"] = f"RNG state differs before the forward: {', '.join(keys)}"
    if not _same(ea["dropout"], ec["dropout"]):
        if ea["dropout"] is None or ec["dropout"] is None or ea["dropout"].shape != ec["dropout"].shape:
            out["dropout"] = "dropout masks recorded in one run only or with another shape"
        else:
            n = int(np.count_nonzero(np.unpackbits(ea["dropout"]) != np.unpackbits(ec["dropout"])))
            out["dropout"] = f"{n} of {ea['dropout'].size * 8} dropout mask bits differ"
    for key in ("loss", "lr"):
        x, y = getattr(a, key)[i], getattr(c, key)[j]
        xr, yr = bool(getattr(a, f"{key}_recorded")[i]), bool(getattr(c, f"{key}_recorded")[j])
        if xr != yr or (xr and not _same_float(x, y)):
            out[key] = f"{key} {hexf(y, yr)} vs A's {hexf(x, xr)}"
    return out


def _origin(a: Trace, c: Trace, j: int, step: int) -> list[str]:
    """For C entry ``j`` (aligned with A step ``step``): the A steps whose batch or RNG state it repeats."""
    ec, lines = c.entries[j], []
    differ = _same_dict(a.entries[step]["batch"], ec["batch"]) if ec["batch"] else []
    if differ:
        same = [a.steps[t] for t in range(len(a.steps)) if not _same_dict(a.entries[t]["batch"], ec["batch"])]
        equal = sorted(set(ec["batch"]) - set(differ))
        lines.append(f"C step {step}'s batch = A step {same[0]}'s" + (" (the data order restarted)"
                     if same[0] < step else "") if same else f"C step {step}'s batch was drawn at no step of A"
                     + (f" (equal to A's: {', '.join(equal)}; different: {', '.join(differ)}: the same samples "
                        "with other random draws)" if equal else ""))
    for name in _same_dict(a.entries[step]["rng"], ec["rng"]):
        if name not in ec["rng"]:
            continue
        same = [a.steps[t] for t in range(len(a.steps)) if _same(a.entries[t]["rng"].get(name), ec["rng"][name])]
        lines.append(f"C step {step}'s {name} RNG state = A's before step {same[0]}" if same else
                     f"C step {step}'s {name} RNG state matches A's at no step (reseeded or not restored)")
    return lines


@dataclass
class Verdict:
    """The outcome of one audit (what ``--json`` prints, plus the lines the table shows)."""

    bit_exact: bool
    deterministic: bool
    first_divergent_step: int | None
    diverged: list[str]
    first_step_by_field: dict[str, int]
    details: list[str]
    origin: list[str]
    compared_steps: int

    def as_dict(self) -> dict[str, Any]:
        return {"bit_exact": self.bit_exact, "deterministic": self.deterministic,
                "first_divergent_step": self.first_divergent_step, "diverged": self.diverged,
                "first_step_by_field": self.first_step_by_field, "details": self.details, "origin": self.origin,
                "compared_steps": self.compared_steps}

    def summary(self) -> str:
        if not self.deterministic:
            return "NOT DETERMINISTIC: " + "; ".join(self.details[:2])
        if self.bit_exact:
            return f"BIT-EXACT: {self.compared_steps} resumed steps, final parameters and optimizer state equal"
        what = ", ".join(self.diverged)
        head = (f"DIVERGED at step {self.first_divergent_step}: {what}" if self.first_divergent_step is not None
                else f"DIVERGED in the final state: {what}")
        return head + (f" ({self.origin[0]})" if self.origin else "")


def _check_protocol(trace: Trace, expected: range, label: str) -> None:
    if trace.steps != list(expected):
        shown = trace.steps[:6] + (["..."] if len(trace.steps) > 6 else [])
        raise HarnessError(f"the {label} run recorded steps {shown}, expected {expected.start}..{expected.stop - 1}: "
                           "the harness must call run.begin_step(step) once per optimizer step with the global step "
                           "and stop when run.stop_now(completed) says so")


def judge(a: Trace, b: Trace | None, c: Trace, options: Options) -> Verdict:
    """C against A (and B against A before ``stop_at``); see the module docs."""
    k, n = options.stop_at, options.steps
    _check_protocol(a, range(n), "straight")
    if not a.params:
        raise HarnessError("the straight run recorded no final parameters: the harness must call run.finish(model, "
                           "optimizer)")
    if b is not None:
        _check_protocol(b, range(k), "interrupted")
        for i in range(k):
            diff = _step_diff(a, i, b, i)
            if diff:
                return Verdict(False, False, None, [], {}, [f"the interrupted run differs from the straight run at "
                               f"step {i}, before any checkpoint: {'; '.join(diff.values())}",
                               "the stack is not deterministic under these options, so resume exactness cannot be "
                               "judged"], [], 0)
    first: dict[str, int] = {}
    details: list[str] = []
    origin: list[str] = []
    expected = list(range(k, n))
    for j, step in enumerate(expected):
        if j >= len(c.steps):
            first.setdefault("steps", step)
            details.append(f"C stopped after {len(c.steps)} steps; A ran to step {n - 1}")
            break
        diff = _step_diff(a, step, c, j)
        for name in diff:
            first.setdefault(name, step)
        if diff and not details:
            details = [f"step {step}: {line}" for line in diff.values()]
            origin = _origin(a, c, j, step)
    if len(c.steps) > len(expected):
        first.setdefault("steps", n)
        details.append(f"C ran {len(c.steps) - len(expected)} more steps than A (steps {c.steps[len(expected):][:4]})")
    final = {"params": _same_dict(a.params, c.params), "optimizer": _same_dict(a.optimizer, c.optimizer)}
    if not c.params:
        final["params"] = ["(the resumed run recorded no final parameters)"]
    for name, keys in final.items():
        if keys:
            details.append(f"final {name} differ in {len(keys)} tensors: {', '.join(keys[:4])}")
    step = min(first.values()) if first else None
    diverged = [f for f in STEP_FIELDS if first.get(f) == step and step is not None]
    diverged += [f for f in FINAL_FIELDS if final[f]]
    return Verdict(not diverged, True, step, diverged, {f: first[f] for f in STEP_FIELDS if f in first},
                   details, origin, min(len(c.steps), len(expected)))
