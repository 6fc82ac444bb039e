"""torch.distributed ranks in fresh processes, for the rank-consistency checks (adapter side).

Contract
--------
* :func:`run_ranks` starts ``world_size`` interpreters (``python -m conformance.backends.torch.distributed``,
  through :func:`conformance.harness.processes.start`), each in its own session, rendezvousing over
  ``tcp://127.0.0.1:<free port>`` (loopback only; gloo and NCCL sockets pinned to the loopback interface). The
  process group uses NCCL when the adapter's device is CUDA and there is one GPU per rank, else gloo (on CPU
  tensors, or CUDA tensors with gloo).
* Every rank runs the scenarios of :meth:`conformance.backends.base.Backend.rank_params` in the order
  ``skip_seed`` (first, so that the skipping rank's generator really was never seeded),
  ``same_seed``, ``rank_offset``, ``meta_init``; after each it gathers every rank's
  :func:`conformance.backends.base.params_digest` with ``all_gather_object``. Results go to ``rank<r>.npz`` /
  ``rank<r>.json`` in a temporary directory the parent reads and deletes.
* Nothing hangs: the process group has a timeout, the parent has a deadline; on a crash or a
  deadline every rank's process group is killed and :class:`conformance.backends.base.SubprocessFailed` names
  the ranks, exit statuses and stderr tails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from conformance.harness import processes

from ..base import SubprocessFailed, params_digest

SCENARIOS = ("skip_seed", "same_seed", "rank_offset", "meta_init")
#: The reference model: two Linear(FEATURES, FEATURES) layers in a Sequential (parameter names "0.weight", ...).
FEATURES = 256
STDERR_TAIL = 1500


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_backend(device: str, world_size: int) -> str:
    import torch
    import torch.distributed as dist

    if device == "cuda" and torch.cuda.is_available() and torch.cuda.device_count() >= world_size \
            and dist.is_nccl_available():
        return "nccl"
    return "gloo"


def run_ranks(device: str, world_size: int, seed: int, timeout: float) -> dict:
    """Run the scenarios on ``world_size`` ranks; see :meth:`conformance.backends.base.Backend.rank_params`."""
    pg = _pg_backend(device, world_size)
    env = {"OMP_NUM_THREADS": "1"}
    if sys.platform.startswith("linux"):
        env.update({k: os.environ.get(k, "lo") for k in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME")})
    with tempfile.TemporaryDirectory(prefix="conformance-dist-") as tmp:
        out = Path(tmp)
        port = _free_port()
        procs, logs = [], []
        deadline = time.monotonic() + timeout
        try:
            for rank in range(world_size):
                cfg = {"rank": rank, "world_size": world_size, "port": port, "seed": seed, "device": device,
                       "backend": pg, "timeout": timeout, "out": str(out)}
                logs.append(open(out / f"rank{rank}.stderr", "w"))  # noqa: SIM115 - closed below
                procs.append(processes.start(["-m", __name__, json.dumps(cfg)], env=env, stdout=logs[-1],
                                             stderr=subprocess.STDOUT))
            failure = _wait(procs, deadline, timeout, out, world_size, pg)
        finally:
            for proc in procs:
                processes.stop(proc)
            for log in logs:
                log.close()
        if failure:
            raise SubprocessFailed(failure)
        return _collect(out, world_size, pg, device)


def _wait(procs, deadline: float, timeout: float, out: Path, world_size: int, pg: str) -> str:
    """Wait for the ranks (the first failure or the deadline stops them all); a failure message, '' when every
    rank exited 0."""
    where = f"torch.distributed ({pg}) world size {world_size}"
    codes = processes.wait_all(procs, deadline)
    bad = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
    if bad:
        parts = [f"rank {r} {processes.describe(c)}: {_tail(out, r)}" for r, c in bad]
        return f"{where}: " + "; ".join(parts)
    hung = [r for r, c in enumerate(codes) if c is None]
    if hung:
        parts = [f"rank {r}: {_tail(out, r)}" for r in hung]
        return f"{where}: ranks {hung} did not finish within {timeout:g} s and were killed; " + "; ".join(parts)
    return ""


def _tail(out: Path, rank: int) -> str:
    return processes.tail_file(out / f"rank{rank}.stderr", STDERR_TAIL) or "(no output)"


def _collect(out: Path, world_size: int, pg: str, device: str) -> dict:
    scenarios: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in SCENARIOS}
    gathered: dict[str, list[str]] = {}
    for rank in range(world_size):
        with np.load(out / f"rank{rank}.npz") as data:
            for scenario in SCENARIOS:
                prefix = f"{scenario}/"
                scenarios[scenario].append({k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)})
        info = json.loads((out / f"rank{rank}.json").read_text())
        if rank == 0:
            gathered = info["gathered"]
        elif info["gathered"] != gathered:
            raise SubprocessFailed(f"rank {rank} gathered different hashes than rank 0: {info['gathered']} vs "
                                   f"{gathered}")
    return {"scenarios": scenarios, "gathered": gathered, "backend": pg, "device": device}


# -- the rank process ------------------------------------------------------------------------------------------------
def _build(torch, device):
    return torch.nn.Sequential(torch.nn.Linear(FEATURES, FEATURES, device=device),
                               torch.nn.Linear(FEATURES, FEATURES, device=device))


def _worker(cfg: dict) -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    from .tensors import to_numpy

    torch.set_num_threads(1)
    rank, world_size, seed = cfg["rank"], cfg["world_size"], cfg["seed"]
    if cfg["backend"] == "nccl":
        torch.cuda.set_device(rank)
        dev = torch.device("cuda", rank)
    else:
        dev = torch.device("cuda", 0) if cfg["device"] == "cuda" else torch.device(cfg["device"])
    dist.init_process_group(cfg["backend"], init_method=f"tcp://127.0.0.1:{cfg['port']}", rank=rank,
                            world_size=world_size, timeout=timedelta(seconds=cfg["timeout"]))
    arrays, gathered = {}, {}
    for scenario in SCENARIOS:
        if scenario == "meta_init":
            model = _build(torch, "meta")
            model.to_empty(device=dev)
            torch.manual_seed(seed)
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.reset_parameters()
        else:
            if scenario == "same_seed" or (scenario == "skip_seed" and rank != world_size - 1):
                torch.manual_seed(seed)
            elif scenario == "rank_offset":
                torch.manual_seed(seed + rank)
            model = _build(torch, dev)
        params = {name: to_numpy(p) for name, p in model.named_parameters()}
        everyone: list = [None] * world_size
        dist.all_gather_object(everyone, params_digest(params))
        gathered[scenario] = everyone
        arrays.update({f"{scenario}/{name}": a for name, a in params.items()})
    out = Path(cfg["out"])
    np.savez(out / f"rank{rank}.npz", **arrays)
    (out / f"rank{rank}.json").write_text(json.dumps({"gathered": gathered}))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
