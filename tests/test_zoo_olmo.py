"""The OLMo and OLMo-core zoo factories (``conformance/audit/zoo/olmo_models.py``) against their specs.

ai2-olmo 0.6.0 pins ai2-olmo-core==0.1.0, so OLMo and a current OLMo-core (module ``olmo_core`` both) cannot share
an environment: the OLMo tests skip without ``olmo``, the OLMo-core ones without ``olmo_core.nn.transformer``. Checks:

* every OLMo entry passes its code spec both eagerly (``OLMo.__init__`` runs ``reset_parameters``) and through the meta
  device (``init_device="meta"``, ``to_empty``, poison, ``reset_parameters()`` as ``scripts/train.py`` does);
* ``olmo-full-megatron`` fails its intent spec only by truncation: ``config.py`` documents that an unset
  ``init_cutoff_factor`` means no cutoff, the code cuts at 3 std (``init_cutoff_factor or 3.0``);
* the specs discriminate: a skipped init fails every parameter, mitchell's ``attn_out`` drawn without its
  ``layer_id + 1`` depth factor fails on the deeper layers, and the real code spec rejects the plain-normal
  (``init_cutoff_factor`` unset) variant of OLMo 2's init;
* ``init_fn`` values that ``InitFnType`` documents but ``reset_parameters`` does not implement raise;
* OLMo-core: ``olmo2_14M`` (``InitMethod.normal``) passes its code spec; ``InitMethod.llama`` passes its code spec
  and fails the intent of its docstring ("like normal, but output layers ...") on the embeddings and ``w3``; a
  skipped init fails everywhere; where only the old OLMo-core is installed, its entries say why they cannot run.

About 40 s on two cores with OLMo, 15 s with OLMo-core.
"""

from __future__ import annotations

import importlib
import os
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from conformance.backends.torch import models  # noqa: E402

from conformance.audit import audit_snapshot  # noqa: E402
from conformance.audit import spec as S  # noqa: E402
from conformance.audit.factory import resolve  # noqa: E402
from conformance.audit.zoo import availability, version_of  # noqa: E402
from conformance.audit.zoo import olmo_models as O  # noqa: E402


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - missing or broken: the tests that need it skip
        return False
    return True


HAS_OLMO = _importable("olmo.model")
#: OLMo-core >= 2 (ai2-olmo 0.6.0 pins ai2-olmo-core 0.1.0, whose olmo_core has no nn.transformer).
HAS_CORE = _importable("olmo_core.nn.transformer")
if not (HAS_OLMO or HAS_CORE):
    pytest.skip("neither ai2-olmo (olmo) nor ai2-olmo-core >= 2 (olmo_core) imports", allow_module_level=True)
needs_olmo = pytest.mark.skipif(not HAS_OLMO, reason="ai2-olmo (module olmo) does not import")
needs_core = pytest.mark.skipif(not HAS_CORE, reason="ai2-olmo-core >= 2 (olmo_core.nn.transformer) does not import")

ENTRIES = {e.name: e for e in O.ENTRIES}
OLMO = ["olmo-mitchell", "olmo-normal", "olmo-full-megatron"]
CORE = ["olmo-core-olmo2", "olmo-core-llama-init"]
TAG = "allenai/OLMo@6c3373fa182af2d57fe3c390ffc8420d5c5b325a "  # v0.6.0
CORE_TAG = "allenai/OLMo-core@v3.0.0 "


def _snap(entry, mode: str, init: str | None = None, **overrides):
    """(snapshot, fresh eager reference) of ``entry`` built as the zoo runner builds it, seed 0."""
    fn = resolve(entry.build)
    config = {**entry.config, **overrides}
    init = init or ("none" if mode == "eager" else entry.init)
    torch.manual_seed(0)
    snap = models.build(fn, "cpu", device_init=mode, init=init, **config)
    reference = models.build(fn, "cpu", device_init="eager", init="none", **config)
    return snap, reference


def _failing(report) -> dict[str, str]:
    return {t.name: t.status for t in report.tensors if not t.passed}


def test_catalogue_entries():
    assert list(ENTRIES) == OLMO + CORE
    for e in ENTRIES.values():
        core = e.name in CORE
        assert e.library == ("ai2-olmo-core" if core else "ai2-olmo")
        assert e.upstream == ("https://github.com/allenai/OLMo-core" if core else "https://github.com/allenai/OLMo")
        assert e.device_init == (("meta",) if core else ("eager", "meta"))
        assert e.init == f"conformance.audit.zoo.olmo_models:{'olmo_core_init_weights' if core else 'reset_parameters'}"
        assert availability(e, probe=True).available == (HAS_CORE if core else HAS_OLMO)
        code = S.load(e.spec)
        assert code.kind == "code" and all(r.source for r in code.rules)
        assert any(s.startswith(CORE_TAG if core else TAG) for s in code.sources)
        if e.intent:
            intent = S.load(e.intent)
            assert intent.kind == "intent" and intent.code == e.spec


@pytest.mark.skipif(HAS_CORE or version_of("ai2-olmo-core") is None, reason="needs an OLMo-core without nn.transformer")
def test_old_olmo_core_is_unavailable_with_the_reason():
    """ai2-olmo 0.6.0 pins ai2-olmo-core==0.1.0: the OLMo-core entries then say why they cannot run."""
    avail = availability(ENTRIES["olmo-core-olmo2"], probe=True)
    assert not avail.available and "olmo_core.nn.transformer" in avail.reason and avail.version == "0.1.0"


@needs_olmo
@pytest.mark.parametrize("mode", ["eager", "meta"])
@pytest.mark.parametrize("name", OLMO)
def test_entry_passes_its_code_spec(name, mode):
    entry = ENTRIES[name]
    t0 = time.perf_counter()
    snap, reference = _snap(entry, mode)
    assert time.perf_counter() - t0 < 10
    assert sum(x.size for x in snap.params.values()) < 500_000
    report = audit_snapshot(snap, entry.spec, reference)
    assert report.passed, report.failures()
    if entry.intent:
        intent = audit_snapshot(snap, entry.intent, reference)
        failing = _failing(intent)
        assert "transformer.wte.weight" in failing and set(failing.values()) == {"mismatch"}
        for t in intent.tensors:
            if t.name in failing:  # truncation, not scale: only the tail tests fail
                assert {v.test for v in t.verdicts if not v.passed} <= {"tail_lower", "tail_upper"}, t.message


@needs_olmo
def test_skipped_init_fails_everywhere():
    entry = ENTRIES["olmo-normal"]
    snap, reference = _snap(entry, "meta", init="none")
    failing = _failing(audit_snapshot(snap, entry.spec, reference))
    assert set(failing) == set(snap.params) and set(failing.values()) == {"uninitialized"}


def _no_depth(model) -> None:
    """mitchell, but ``attn_out`` without its ``(layer_id + 1)`` factor."""
    import math

    from olmo.initialization import init_normal

    model.reset_parameters()
    for block in model.transformer.blocks:
        init_normal(block.attn_out, 1 / math.sqrt(2 * model.config.d_model), 3.0)


@needs_olmo
def test_mitchell_without_depth_fails():
    entry = ENTRIES["olmo-mitchell"]
    snap, reference = _snap(entry, "meta", init=f"{__name__}:_no_depth")
    report = audit_snapshot(snap, entry.spec, reference)
    assert _failing(report) == {f"transformer.blocks.{i}.attn_out.weight": "mismatch" for i in (1, 2)}
    assert any(not d.verdict.passed and "attn_out" in d.rule_where for d in report.depth)


@needs_olmo
def test_normal_without_cutoff_fails_the_real_spec():
    """OLMo 2 sets init_cutoff_factor 3; with it unset the weights are plain normals and the spec must see that."""
    entry = ENTRIES["olmo-normal"]
    spec = S.load(entry.spec)
    snap, reference = _snap(entry, "eager", init_cutoff_factor=None)
    snap.config["init_cutoff_factor"] = 3.0  # judge the untruncated draw against the cut-at-3 rule
    failing = _failing(audit_snapshot(snap, spec, reference))
    assert "transformer.wte.weight" in failing and set(failing.values()) == {"mismatch"}


@needs_olmo
@pytest.mark.parametrize("init_fn", ["kaiming_normal", "fan_in"])
def test_documented_init_fns_are_not_implemented(init_fn):
    """InitFnType documents kaiming_normal and fan_in; OLMo.reset_parameters raises NotImplementedError on them."""
    from olmo.config import InitFnType

    assert init_fn in InitFnType.__members__
    with pytest.raises(NotImplementedError):
        O.olmo(**{**O.MITCHELL, "init_fn": init_fn})


@needs_olmo
def test_entry_overrides_reach_the_config():
    model = O.olmo(**{**O.MITCHELL, "n_layers": 2, "d_model": 128})
    assert model.config.n_layers == 2 and len(model.transformer.blocks) == 2
    assert model.transformer.wte.weight.shape == (512, 128)


@needs_core
def test_olmo_core_entries():
    """olmo2 (InitMethod.normal) passes; InitMethod.llama passes its code spec and fails its docstring's intent on
    exactly the embeddings (N(0, 1), not normal's TN(0.02)) and the feed-forward input projections w3 (rescaled)."""
    for name in CORE:
        entry = ENTRIES[name]
        t0 = time.perf_counter()
        snap, reference = _snap(entry, "meta")
        assert time.perf_counter() - t0 < 10
        assert sum(x.size for x in snap.params.values()) < 1_000_000  # olmo2_14M's d_model is 128
        report = audit_snapshot(snap, entry.spec, reference)
        assert report.passed, report.failures()
    intent = audit_snapshot(snap, entry.intent, reference)
    assert _failing(intent) == {"embeddings.weight": "mismatch", "blocks.0.feed_forward.w3.weight": "mismatch",
                                "blocks.1.feed_forward.w3.weight": "mismatch"}
    skipped, reference = _snap(ENTRIES["olmo-core-olmo2"], "meta", init="none")
    failing = _failing(audit_snapshot(skipped, ENTRIES["olmo-core-olmo2"].spec, reference))
    assert set(failing) == set(skipped.params) and set(failing.values()) == {"uninitialized"}
    assert O.olmo_core(n_layers=3).n_layers == 3
