"""The torchtitan zoo factories (``conformance/audit/zoo/torchtitan_models.py``) against their specs.

Skipped when torch or torchtitan (which imports triton) is missing. Checks:

* the builders reproduce the model registry's ``debugmodel`` / ``debugmodel_moe`` configs exactly at the registry's
  sizes (so the tiny models carry the library's own ``param_init`` functions);
* every entry, built as ``Trainer.__init__`` builds it (meta, ``to_empty``, poison, ``init_weights()``), passes its
  code spec, and every layer's RoPE cache equals a fresh eager build's;
* the transformers-backend llama passes its code spec and fails its intent spec on exactly its rotary
  ``inv_freq`` buffers (the comment says init_states recomputes them; with transformers 5 it does not: #4783);
* the dense qwen3 entry fails its intent spec on exactly ``attention.wo``: the module comment says residual output
  projections use Megatron's scaled init, the dense builder gives ``wo`` std 0.02 (the documented finding);
* the specs discriminate: a skipped init fails every parameter, a llama3 whose depth init uses ``n_layers`` instead
  of ``layer_id + 1`` fails on the layers where the two differ, and an init that leaves buffers alone (the RoPE cache
  stays the materialization poison) fails the buffer check.

About 30 s on two cores, most of it importing torchtitan.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("triton")
pytest.importorskip("torchtitan.models.llama3")

from conformance.backends.torch import models  # noqa: E402

from conformance.audit import audit_snapshot  # noqa: E402
from conformance.audit import spec as S  # noqa: E402
from conformance.audit.factory import resolve  # noqa: E402
from conformance.audit.zoo import availability  # noqa: E402
from conformance.audit.zoo import torchtitan_models as T  # noqa: E402

ENTRIES = {e.name: e for e in T.ENTRIES}
COMMIT = "48cb7ae1ff62b91a4743e656fedae505db03e096"
#: torchtitan's own model families (the fourth entry goes through its transformers modeling backend).
NATIVE = ["torchtitan-llama3", "torchtitan-qwen3", "torchtitan-qwen3-moe"]


def _snap(entry, init=None, **overrides):
    """(meta snapshot initialized by ``init``, fresh eager reference), seed 0."""
    fn = resolve(entry.build)
    config = {**entry.config, **overrides}
    torch.manual_seed(0)
    snap = models.build(fn, "cpu", device_init="meta", init=init or entry.init, **config)
    reference = models.build(fn, "cpu", device_init="eager", init="none", **config)
    return snap, reference


def _failing(report) -> dict[str, str]:
    return {t.name: t.status for t in report.tensors if not t.passed}


def _strip(config) -> str:
    """A config's repr without object addresses (closures and partials are rebuilt per call)."""
    return re.sub(r" at 0x[0-9a-f]+", "", repr(config))


def test_catalogue_entries():
    assert list(ENTRIES) == ["torchtitan-llama3", "torchtitan-qwen3", "torchtitan-qwen3-moe", "torchtitan-hf-llama"]
    for e in ENTRIES.values():
        assert e.library == "torchtitan" and e.upstream == "https://github.com/pytorch/torchtitan"
        assert e.device_init == ("meta",)  # the Trainer only ever builds on meta
        assert e.init == ("init_weights" if e.name in NATIVE else "conformance.audit.zoo.torchtitan_models:"
                          "hf_init_weights")
        assert availability(e, probe=True).available
        code = S.load(e.spec)
        assert code.kind == "code" and all(r.source for r in code.rules)
        assert any(s.startswith((f"pytorch/torchtitan@{COMMIT} ", "pytorch/torchtitan@v0.3.0 ")) for s in code.sources)
        if e.intent:
            intent = S.load(e.intent)
            assert intent.kind == "intent" and intent.code == e.spec


def test_builders_reproduce_the_registry_debugmodels():
    from torchtitan.models import llama3, qwen3

    assert _strip(T.llama3_config(n_layers=6, dim=256, n_heads=16, vocab_size=2048, max_seq_len=131072)) == \
        _strip(llama3.llama3_configs["debugmodel"]("flex"))
    assert _strip(T.qwen3_config(n_layers=8, dim=256, n_heads=16, n_kv_heads=8, head_dim=128, hidden_dim=3072,
                                 vocab_size=2048, max_seq_len=4096)) == \
        _strip(qwen3.qwen3_configs["debugmodel"]("flex"))
    assert _strip(T.qwen3_moe_config(n_layers=8, dim=256, n_heads=16, n_kv_heads=8, head_dim=128,
                                     moe_hidden_dim=768, num_experts=64, top_k=8, vocab_size=2048,
                                     max_seq_len=4096)) == \
        _strip(qwen3.qwen3_configs["debugmodel_moe"]("flex"))


@pytest.mark.parametrize("name", NATIVE)
def test_entry_passes_its_code_spec(name):
    entry = ENTRIES[name]
    t0 = time.perf_counter()
    snap, reference = _snap(entry)
    assert time.perf_counter() - t0 < 10
    assert sum(x.size for x in snap.params.values()) < 500_000
    report = audit_snapshot(snap, entry.spec, reference)
    assert report.passed, report.failures()
    caches = [t for t in report.tensors if t.kind == "buffer" and t.name.endswith("rope.cache")]
    assert len(caches) == entry.config["n_layers"] and all(t.status == "pass" for t in caches)
    if entry.intent:
        intent = audit_snapshot(snap, entry.intent, reference)
        assert not intent.passed
        assert _failing(intent) == {f"layers.{i}.attention.wo.weight": "mismatch"
                                    for i in range(entry.config["n_layers"])}


def test_skipped_init_fails_everywhere():
    entry = ENTRIES["torchtitan-llama3"]
    snap, reference = _snap(entry, init="none")
    report = audit_snapshot(snap, entry.spec, reference)
    failing = _failing(report)
    assert set(failing) == set(snap.params) | {n for n in snap.buffers}
    assert {failing[n] for n in snap.params} == {"uninitialized"}


def test_depth_init_by_n_layers_fails():
    """torchtitan's old ``depth_init = False`` (std 0.02/sqrt(2*n_layers)) is not what 0.3.0 does."""
    from functools import partial

    n = 3
    flat = {"weight": partial(torch.nn.init.trunc_normal_, std=0.02 / (2 * n) ** 0.5),
            "bias": torch.nn.init.zeros_}

    def flipped(**config):
        cfg = T.llama3_config(**config)
        for layer in cfg.layers:
            layer.attention.wo.param_init = flat
            layer.feed_forward.w2.param_init = flat
            layer.feed_forward.w3.param_init = flat
        return cfg.build()

    entry = ENTRIES["torchtitan-llama3"]
    entry = dataclasses.replace(entry, build=flipped)
    snap, reference = _snap(entry, n_layers=n)
    failing = _failing(audit_snapshot(snap, entry.spec, reference))
    # layer_id + 1 == n_layers on the last layer, so only layers 0 and 1 differ
    assert set(failing) == {f"layers.{i}.{w}.weight" for i in (0, 1)
                            for w in ("attention.wo", "feed_forward.w2", "feed_forward.w3")}


def _params_only(model) -> None:
    """Draw every parameter by its ``param_init`` and leave every buffer as materialized (no ``_init_self_buffers``)."""
    from torchtitan.protocols.module import Module

    for m in model.modules():
        if isinstance(m, Module):
            m._init_self_parameters()


def test_rope_cache_left_unrecomputed_fails():
    """An init that leaves the RoPE cache as ``to_empty`` left it (the torchtitan #3775 / #4783 failure mode)."""
    entry = ENTRIES["torchtitan-llama3"]
    snap, reference = _snap(entry, init=f"{__name__}:_params_only")
    failing = _failing(audit_snapshot(snap, entry.spec, reference))
    assert failing == {f"layers.{i}.attention.rope.cache": "buffer_mismatch" for i in range(3)}


def test_hf_backend_leaves_rotary_inv_freq_uninitialized():
    """The transformers modeling backend passes its code spec (parameters) and fails its intent spec on exactly the
    rotary buffers with transformers 5.x (pytorch/torchtitan#4783); the classes it patches are restored."""
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_utils import PreTrainedModel

    before = PreTrainedModel.__dict__["_init_weights"]
    entry = ENTRIES["torchtitan-hf-llama"]
    snap, reference = _snap(entry)
    assert PreTrainedModel.__dict__["_init_weights"] is before  # the process-wide patch did not leak
    assert sum(x.size for x in snap.params.values()) < 500_000
    report = audit_snapshot(snap, entry.spec, reference)
    assert report.passed, report.failures()
    failing = _failing(audit_snapshot(snap, entry.intent, reference))
    if int(transformers.__version__.split(".")[0]) >= 5:  # rope_init_fn is no longer a module attribute
        assert failing == {"model.model.rotary_emb.inv_freq": "buffer_mismatch",
                           "model.model.rotary_emb.original_inv_freq": "buffer_mismatch"}
    else:
        assert failing == {}
