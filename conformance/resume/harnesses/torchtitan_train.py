"""The ``torchtitan`` harness: torchtitan's own training entry point, ``torchtitan.train.main`` (what
``torchrun -m torchtitan.train --module llama3 --config llama3_debugmodel`` runs), on a 1-layer llama3 (dim 64,
4 heads, vocab 264, seq_len 16) and a synthetic text dataset built from the seed, on one process (world size 1).

What torchtitan does, and what the harness wires:

* ``main`` parses ``--module conformance.resume.harnesses.torchtitan_train --config conformance_tiny_llama3`` plus
  CLI overrides with torchtitan's ``ConfigManager`` (``--module`` takes any importable module with a config
  function, as ``torchtitan/config/manager.py`` documents), builds ``Trainer(config)`` and calls ``train()``.
  The config function mirrors ``llama3_debugmodel`` (``torchtitan/models/llama3/config_registry.py``): AdamW
  (``default_adamw(lr=8e-4)``), warmup + stable + linear decay LR (``warmup_steps=2, decay_ratio=0.8``), the
  chunked cross-entropy loss, selective activation checkpointing, ``metrics.log_freq=1``,
  ``checkpoint.last_save_model_only=False``; only the model is smaller (same ``_build_llama3_layers`` builder,
  the same inits).
* Seeding: ``--debug.seed=<run.seed>`` (``set_determinism``: ``torch.manual_seed`` on a world of one).
* Checkpointing: ``--checkpoint.enable --checkpoint.interval=<stop_at> --checkpoint.folder=<run.checkpoint_dir>``
  (absolute, so ``dump_folder`` does not prefix it). The interrupted run is configured exactly like the straight
  one (``training.steps = run.steps``) and stops (an exception, like a preemption) right after
  ``CheckpointManager.save`` has written ``step-<stop_at>`` with DCP. The resumed run is the same command with
  the same ``checkpoint.folder``: ``Trainer.train`` calls ``checkpointer.load(step=-1)``, which loads the latest
  ``step-N`` in the folder (model, optimizer, lr_scheduler, dataloader, train_state).
* Data: a map-style ``datasets.Dataset`` of 64 printable-ASCII texts registered in
  ``torchtitan.hf_datasets.text_datasets.DATASETS`` (the documented way to add a dataset: "Add your dataset
  here"), read by torchtitan's ``HuggingFaceTextDataLoader`` (``HuggingFaceTextDataset`` + torchdata
  ``StatefulDataLoader``), tokenized by a byte tokenizer (a ``BaseTokenizer`` Configurable: torchtitan's test
  tokenizer assets are not in the wheel). Each text is ``seq_len - 1`` bytes, so with BOS and EOS it packs into
  exactly one sample: 8 steps per epoch. torchtitan does not shuffle epoch 0; ``reloop`` shuffles each later
  epoch with ``seed=42 + epoch`` (not the run's seed).
* Options: ``workers`` -> ``--dataloader.num_workers``. The trainer's loader is always torchdata's
  ``StatefulDataLoader`` and the checkpoint always holds its state (``snapshot_every_n_steps`` is the checkpoint
  interval), so ``--stateful-loader`` changes nothing (noted in the result). ``dataset_randomness`` -> the
  dataset's ``sample_processor`` replaces each character by a random one with probability 0.15, drawn from the
  global torch RNG (the worker's in a DataLoader worker), as augmentation does.

torchtitan's llama3 has no dropout (no dropout module, attention without dropout), so no masks are recorded.

CPU (only without an accelerator; torchtitan 0.3.0 has no CPU path, so three small patches, none touching what is
saved or restored): torchtitan picks ``torch._utils._get_available_device_type() or "cuda"`` at import
(``torchtitan/tools/utils.py`` ``get_device_info``), so the harness makes that lookup answer ``"cpu"`` while
torchtitan is first imported (the process group is then gloo); ``MetricsProcessor`` always builds a
``DeviceMemoryMonitor`` from ``torch.cpu``, which has no memory stats (``components/metrics.py``), replaced by one
reporting zeros; ``dist_utils.set_pg_timeouts`` (``barrier(device_ids=["cpu"])``, rejected by gloo) becomes a no-op.
The attention is ``ScaledDotProductAttention`` (causal) instead of FlexAttention, whose backward torch does not
implement on CPU (varlen needs CUDA flash kernels); torchtitan's graph_trainer tests swap it in the same way, and
with one document per sample the mask is the same. No torch.compile is involved (``compile.enable`` is off).

Recording (the only patches; each calls torchtitan's real method): ``Trainer.train`` is wrapped to hook the built
trainer: ``train_step`` (``run.begin_step(step - 1, lr=<the optimizer's lr>)`` / ``run.end_step(loss=...)``),
``post_dataloading_process`` (``run.record_batch`` of the inputs, positions and labels),
``forward_backward_step`` (the step's loss) and ``checkpointer.save`` (stop the interrupted run after it saved).
"""

from __future__ import annotations

import os
import socket
import sys

from ..protocol import Unsupported

SAMPLES, BATCH, SEQ, DIM, HEADS, VOCAB = 64, 8, 16, 64, 4, 264
BOS, EOS = 256, 257
DATASET = "conformance_synthetic"
MASK_P = 0.15  # --dataset-randomness: each character is replaced by a random one with this probability
_ALPHABET = "".join(chr(c) for c in range(32, 127))

#: Set by the harness before main() parses the config (the seed and options of this run).
_SETTINGS: dict = {}
_CLASSES: dict = {}


def _noisy_text(sample: dict) -> str:
    """``sample_processor`` for --dataset-randomness: random character replacement from the global torch RNG."""
    import torch

    text = sample["text"]
    mask = torch.rand(len(text)) < MASK_P
    picks = torch.randint(0, len(_ALPHABET), (len(text),))
    return "".join(_ALPHABET[int(p)] if m else c for c, m, p in zip(text, mask.tolist(), picks.tolist(), strict=True))


def _plain_text(sample: dict) -> str:
    return sample["text"]


def _tokenizer_class():
    """A byte tokenizer (a torchtitan ``BaseTokenizer`` Configurable): byte values, BOS 256, EOS 257."""
    if "tokenizer" not in _CLASSES:
        from dataclasses import dataclass

        from torchtitan.components.tokenizer import BaseTokenizer

        class ByteTokenizer(BaseTokenizer):
            @dataclass(kw_only=True, slots=True)
            class Config(BaseTokenizer.Config):
                pass

            def __init__(self, config=None, tokenizer_path: str | None = None, **kwargs):
                super().__init__()
                self.bos_id, self.eos_id = BOS, EOS

            def encode(self, text: str, add_bos: bool = False, add_eos: bool = False, **kwargs) -> list[int]:
                return [BOS] * add_bos + list(text.encode("utf-8")) + [EOS] * add_eos

            def decode(self, ids, **kwargs) -> str:
                return bytes(i for i in ids if i < 256).decode("utf-8", "replace")

            def get_vocab_size(self) -> int:
                return VOCAB

        _CLASSES["tokenizer"] = ByteTokenizer
    return _CLASSES["tokenizer"]


def _register_dataset(seed: int, randomness: bool) -> None:
    """``DATASETS[DATASET]``: 64 texts of ``SEQ - 1`` printable ASCII characters drawn from ``seed``."""
    import numpy as np
    from torchtitan.hf_datasets import DatasetConfig, text_datasets

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, len(_ALPHABET), size=(SAMPLES, SEQ - 1))
    texts = ["".join(_ALPHABET[c] for c in row) for row in codes]

    def load(path: str):
        from datasets import Dataset

        return Dataset.from_dict({"text": texts})

    text_datasets.DATASETS[DATASET] = DatasetConfig(path="(in memory)", loader=load,
                                                   sample_processor=_noisy_text if randomness else _plain_text)


def conformance_tiny_llama3():
    """The config function ``--config`` names: ``llama3_debugmodel`` with a 1-layer, dim-64 llama3."""
    from torchtitan.components.checkpoint import CheckpointManager
    from torchtitan.components.loss import ChunkedLossWrapper, CrossEntropyLoss
    from torchtitan.components.metrics import MetricsProcessor
    from torchtitan.components.optimizer import LRSchedulersContainer, default_adamw
    from torchtitan.config import ParallelismConfig, TrainingConfig
    from torchtitan.distributed.activation_checkpoint import SelectiveAC
    from torchtitan.distributed.pipeline_parallel import pipeline_llm
    from torchtitan.hf_datasets.text_datasets import HuggingFaceTextDataLoader
    from torchtitan.models.common import ComplexRoPE, Embedding, Linear, RMSNorm, compute_ffn_hidden_dim
    from torchtitan.models.common.config_utils import decoder_vocab_size
    from torchtitan.models.llama3 import (
        _EMBEDDING_INIT,
        _NORM_INIT,
        Llama3Model,
        Llama3StateDictAdapter,
        _build_llama3_layers,
        _output_linear_init,
        parallelize_llama,
    )
    from torchtitan.protocols.model_spec import ModelSpec
    from torchtitan.trainer import Trainer

    model = Llama3Model.Config(
        dim=DIM, vocab_size=VOCAB,
        tok_embeddings=Embedding.Config(num_embeddings=VOCAB, embedding_dim=DIM, param_init=_EMBEDDING_INIT),
        norm=RMSNorm.Config(normalized_shape=DIM, param_init=_NORM_INIT),
        lm_head=Linear.Config(in_features=DIM, out_features=VOCAB, param_init=_output_linear_init(DIM)),
        layers=_build_llama3_layers(
            fuse_qkv=True, n_layers=1, dim=DIM, n_heads=HEADS,
            hidden_dim=compute_ffn_hidden_dim(DIM, multiple_of=32),
            rope=ComplexRoPE.Config(dim=DIM // HEADS, max_seq_len=SEQ, theta=500000, scaling="llama"),
            attn_backend="flex"),
    )
    # FlexAttention (the llama3 default) cannot run backward on CPU (torch's flex_attention _validate_device) and
    # varlen needs CUDA flash kernels; torchtitan's graph_trainer tests swap in SDPA the same way
    # (experiments/graph_trainer/common_utils.py). Each sample here is one whole document (positions 0..L-1),
    # so causal SDPA is the block-causal mask FlexAttention would build.
    if _SETTINGS.get("sdpa", True):
        from torchtitan.models.common.attention import ScaledDotProductAttention

        for layer in model.layers:
            layer.attention.inner_attention = ScaledDotProductAttention.Config()
    model_spec = ModelSpec(name="llama3", flavor="conformance-tiny", model=model, parallelize_fn=parallelize_llama,
                           pipelining_fn=pipeline_llm, post_optimizer_build_fn=None,
                           state_dict_adapter=Llama3StateDictAdapter)
    return Trainer.Config(
        loss=ChunkedLossWrapper.Config(loss_fn=CrossEntropyLoss.Config(
            global_vocab_size=decoder_vocab_size(model_spec))),
        hf_assets_path="(byte tokenizer: no assets)",
        model_spec=model_spec,
        tokenizer=_tokenizer_class().Config(),
        optimizer=default_adamw(lr=8e-4),
        lr_scheduler=LRSchedulersContainer.Config(warmup_steps=2, decay_ratio=0.8, decay_type="linear",
                                                  min_lr_factor=0.0),
        training=TrainingConfig(local_batch_size=BATCH, seq_len=SEQ, steps=24, disable_cuda_graphs=True),
        dataloader=HuggingFaceTextDataLoader.Config(dataset=DATASET),
        metrics=MetricsProcessor.Config(log_freq=1),
        parallelism=ParallelismConfig(pipeline_parallel_schedule="Interleaved1F1B"),
        checkpoint=CheckpointManager.Config(interval=12, last_save_model_only=False),
        activation_checkpoint=SelectiveAC.Config(),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _import_torchtitan_on_cpu() -> str:
    """Import torchtitan; without an accelerator make its device lookup say ``cpu`` (it falls back to cuda)."""
    import torch
    import torch._utils as tu

    real = tu._get_available_device_type
    if real() is not None or "torchtitan.tools.utils" in sys.modules:
        import torchtitan.train  # noqa: F401

        return real() or "cuda"
    tu._get_available_device_type = lambda: "cpu"
    try:
        import torchtitan.components.metrics as metrics
        import torchtitan.train  # noqa: F401
    finally:
        tu._get_available_device_type = real

    class CPUMemoryMonitor(metrics.DeviceMemoryMonitor):
        """``MetricsProcessor`` always builds a ``DeviceMemoryMonitor`` of ``torch.<device>`` memory stats, which
        ``torch.cpu`` lacks (``get_device_name``, ``memory_stats``, ...): report zeros instead."""

        def __init__(self, device: str = "cpu"):
            self.device, self.device_name, self.device_index = torch.device("cpu"), "cpu", 0
            self.device_capacity, self.device_capacity_gib = 1, 0.0

        def get_peak_stats(self):
            return metrics.DeviceMemStats(0.0, 0.0, 0.0, 0.0, 0, 0)

        def reset_peak_stats(self):
            pass

    metrics.build_device_memory_monitor = CPUMemoryMonitor

    import torchtitan.distributed.utils as dist_utils

    def set_pg_timeouts(timeout, parallel_dims):
        """The real one runs ``barrier(device_ids=[torch.cpu.current_device()])``: gloo rejects ``['cpu']``. It
        only shortens collective timeouts after the first step; a world of one has no collectives to time."""

    dist_utils.set_pg_timeouts = set_pg_timeouts
    return "cpu"


class _Stop(Exception):
    """Raised right after the interrupted run's checkpoint is written (a preemption)."""


class TorchtitanHarness:
    """torchtitan: ``torchtitan.train.main`` with ``checkpoint.interval`` and resume from the latest checkpoint."""

    def versions(self) -> dict[str, str]:
        from . import version_of

        out = {name: version_of(name) for name in ("torchtitan", "torch", "torchdata", "datasets")}
        return {k: v.split("+")[0] for k, v in out.items() if v}

    def describe(self) -> str:
        return ("torchtitan.train.main (1-layer llama3, AdamW, warmup + linear decay) with checkpoint.interval "
                "and resume from the latest step-N in checkpoint.folder")

    def train(self, run) -> None:
        from . import version_of

        if version_of("torchdata") is None:
            raise Unsupported("torchtitan needs torchdata")
        opts = run.options
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())})
        device = _import_torchtitan_on_cpu()
        import torch
        import torchtitan.train as tt_train
        from torchtitan.trainer import Trainer

        if device == "cpu":
            run.note("no accelerator: torchtitan's device lookup answered 'cpu' while it was imported "
                     "(it falls back to 'cuda'); the process group is gloo")
        _SETTINGS["sdpa"] = device == "cpu"
        if device == "cpu":
            run.note("attention: ScaledDotProductAttention (causal) instead of FlexAttention, whose backward torch "
                     "does not implement on CPU; one document per sample, so the mask is the same")
        if opts.stateful_loader:
            run.note("--stateful-loader changes nothing: torchtitan's loader is always torchdata's "
                     "StatefulDataLoader (ParallelAwareDataloader) and its state is always checkpointed")
        _register_dataset(run.seed, opts.dataset_randomness)
        # debug.seed seeds torch only (set_determinism on a world of one: torch.manual_seed); nothing in
        # torchtitan's training path draws from numpy's or Python's global RNG, which would otherwise differ
        # between processes from the first step and hide the comparison.
        import random

        import numpy as np

        random.seed(run.seed)
        np.random.seed(run.seed % 2**32)
        run.note("numpy and Python random seeded by the harness (torchtitan's debug.seed seeds torch only)")

        run.work_dir.mkdir(parents=True, exist_ok=True)
        argv = ["torchtitan.train", "--module", __name__, "--config", "conformance_tiny_llama3",
                f"--dump_folder={run.work_dir}", f"--debug.seed={run.seed}", f"--training.steps={run.steps}",
                "--checkpoint.enable", f"--checkpoint.interval={run.stop_at}",
                f"--checkpoint.folder={run.checkpoint_dir.resolve()}",
                f"--dataloader.num_workers={opts.workers}"]
        if run.mode == "resume":
            run.note(f"resumed with the same command: checkpointer.load(step=-1) picks the latest step-N in "
                     f"{run.checkpoint_dir.name}")

        captured: dict = {}
        real_train = Trainer.train

        def train(trainer):
            captured["trainer"] = trainer
            model = trainer.model_parts[0]
            optim = trainer.optimizers.optimizers[0]
            loss_box: list = [None]
            real_step = trainer.train_step
            real_post = trainer.post_dataloading_process
            real_fwd_bwd = trainer.forward_backward_step
            real_save = trainer.checkpointer.save

            def train_step(data_iterator):
                run.begin_step(trainer.step - 1, lr=optim.param_groups[0]["lr"])
                loss_box[0] = None
                real_step(data_iterator)
                run.end_step(loss=loss_box[0])

            def post_dataloading_process(input_dict, labels):
                run.record_batch({"input_dict": input_dict, "labels": labels})
                return real_post(input_dict, labels)

            def forward_backward_step(**kwargs):
                loss = real_fwd_bwd(**kwargs)
                loss_box[0] = loss.detach().clone()
                return loss

            def save(curr_step, last_step=False):
                saved = real_save(curr_step, last_step=last_step)
                if saved and run.stop_now(curr_step):
                    raise _Stop
                return saved

            trainer.train_step = train_step
            trainer.post_dataloading_process = post_dataloading_process
            trainer.forward_backward_step = forward_backward_step
            trainer.checkpointer.save = save
            run.track(model)
            return real_train(trainer)

        Trainer.train = train
        saved_argv = sys.argv
        sys.argv = argv
        try:
            tt_train.main()
        except _Stop:
            run.note(f"interrupted after CheckpointManager.save wrote step-{run.stop_at}")
            return
        finally:
            sys.argv = saved_argv
            Trainer.train = real_train
            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
        trainer = captured["trainer"]
        run.finish(_FullTensors(trainer.model_parts[0]), _FullTensors(trainer.optimizers.optimizers[0]))


class _FullTensors:
    """``state_dict()`` of a module or optimizer with every DTensor as its full tensor: torchtitan's parameters
    are DTensors even on a world of one, which the recorder cannot turn into numpy arrays."""

    def __init__(self, obj):
        self.obj = obj

    def state_dict(self):
        from torch.distributed.tensor import DTensor

        def full(v):
            if isinstance(v, DTensor):
                return v.full_tensor()
            if isinstance(v, dict):
                return {k: full(x) for k, x in v.items()}
            if isinstance(v, list):
                return [full(x) for x in v]
            return v

        return full(self.obj.state_dict())
