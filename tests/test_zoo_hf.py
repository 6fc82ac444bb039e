"""The Hugging Face ``transformers`` zoo factories (``conformance/audit/zoo/hf_models.py``) against their specs.

Skipped when transformers (or torch) is missing. For every ``hf-*`` entry:

* the builder builds a tiny model quickly, from config, as users build it, and takes keyword overrides;
* the eager build passes its code spec (``hf_<family>``) and fails its intent spec (``hf_<family>_intent``) on
  exactly the weight matrices: the documented finding that ``initializer_range``'s docstring says
  "truncated_normal_initializer" while ``_init_weights`` draws an untruncated ``normal_``;
* the meta build (``to_empty`` + ``init_weights()``) passes the code spec on transformers >= 5; on 4.x the audit
  detects the documented upstream finding: ``post_init`` already flagged every module ``_is_hf_initialized`` on the
  meta device, so ``init_weights()`` writes nothing and every parameter and the rotary ``inv_freq`` keep the poison;
* the spec discriminates: a meta build left uninitialized fails on every parameter, and one Linear re-initialized
  with torch's defaults fails as ``framework_default``.

Runs in well under a minute on two cores (tiny models: 2 layers, hidden 64, vocabulary 256).
"""

from __future__ import annotations

import os
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the hub
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conformance.backends.torch import models  # noqa: E402

from conformance.audit import audit_snapshot  # noqa: E402
from conformance.audit import spec as S  # noqa: E402
from conformance.audit.factory import resolve  # noqa: E402
from conformance.audit.zoo import hf_models  # noqa: E402

ENTRIES = hf_models.ENTRIES
IDS = [e.name for e in ENTRIES]
#: transformers 4.x: init_weights() after a meta build writes nothing (see the module docs of hf_models).
META_INIT_WORKS = int(transformers.__version__.split(".")[0]) >= 5


@pytest.fixture(scope="module", autouse=True)
def _quiet_transformers():
    """Silence transformers' config warnings; import its model classes once so build timings exclude it."""
    logging = transformers.logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    hf_models.gpt2()  # the first build imports the auto classes (seconds); every later build is timed alone
    yield
    logging.set_verbosity(level)


def _build(entry, device_init: str, init: str, **config):
    """(snapshot, fresh eager reference) of ``entry`` as the audit builds it, seed 0."""
    fn = resolve(entry.build)
    torch.manual_seed(0)
    snap = models.build(fn, "cpu", device_init=device_init, init=init, **{**entry.config, **config})
    reference = models.build(fn, "cpu", device_init="eager", init="none", **{**entry.config, **config})
    return snap, reference


def _params(report):
    return [t for t in report.tensors if t.kind == "parameter"]


def test_catalogue_entries():
    assert [e.name for e in ENTRIES] == [f"hf-{m.replace('_', '-')}" for m in hf_models.TINY]
    for e in ENTRIES:
        assert e.library == "transformers" and e.upstream == "https://github.com/huggingface/transformers"
        assert e.device_init == ("eager", "meta") and e.init == "init_weights"
        code, intent = S.load(e.spec), S.load(e.intent)
        assert code.kind == "code" and intent.kind == "intent" and intent.code == e.spec
        assert all("@v5.24.0 " in s or "@v4.57.6 " in s or s.startswith("huggingface/transformers#")
                   for s in code.sources + intent.sources)
        assert all(r.source for r in code.rules + intent.rules)
        assert callable(resolve(e.build))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_builder_is_fast_tiny_and_takes_overrides(entry):
    fn = resolve(entry.build)
    t0 = time.perf_counter()
    model = fn()
    assert time.perf_counter() - t0 < 5.0
    assert isinstance(model, transformers.PreTrainedModel)
    assert type(model).__name__.endswith(("ForCausalLM", "LMHeadModel"))
    assert model.config.vocab_size == 256 and model.config.num_hidden_layers == 2
    assert sum(p.numel() for p in model.parameters()) < 300_000
    assert fn(num_hidden_layers=3).config.num_hidden_layers == 3


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_eager_passes_code_spec_and_fails_intent_on_the_weight_matrices(entry):
    snap, reference = _build(entry, "eager", "none")
    code = audit_snapshot(snap, entry.spec, reference)
    assert code.passed, code.failures()
    intent_spec = S.load(entry.intent)
    intent = audit_snapshot(snap, intent_spec, reference)
    assert not intent.passed
    truncated = {t.name for t in _params(intent)
                 if (rule := intent_spec.rule_for(t.name, snap.module_types.get(t.name))) is not None
                 and rule.dist == "trunc_normal"}
    failing = {t.name for t in _params(intent) if not t.passed}
    assert truncated and failing == truncated
    for t in _params(intent):
        if t.name in failing:  # a normal_ draw has values beyond the 2-std cut the docstring names
            assert any(v.test == "support" and not v.passed for v in t.verdicts), t.message


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_meta_init_weights(entry):
    snap, reference = _build(entry, "meta", entry.init)
    report = audit_snapshot(snap, entry.spec, reference)
    if META_INIT_WORKS:
        assert report.passed, report.failures()
        return
    # transformers 4.x finding: every parameter still holds the poison, and so does every rotary inv_freq
    assert all(t.status == "uninitialized" for t in _params(report)), report.failures()
    rotary = [t for t in report.tensors if t.name.endswith("rotary_emb.inv_freq")]
    assert all(not t.passed for t in rotary)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_spec_discriminates(entry):
    snap, reference = _build(entry, "meta", "none")
    skipped = audit_snapshot(snap, entry.spec, reference)
    assert all(t.status == "uninitialized" for t in _params(skipped))

    torch.manual_seed(0)
    model = resolve(entry.build)(**entry.config)
    name, linear = next((n, m) for n, m in model.named_modules() if type(m) is torch.nn.Linear)  # GPT-2: lm_head
    linear.reset_parameters()  # torch's default: kaiming_uniform_(a=sqrt(5)), not N(0, initializer_range)
    report = audit_snapshot(models.build(model, "cpu"), entry.spec)
    assert not report.passed
    assert report.by_name(f"{name}.weight").status == "framework_default"


@pytest.mark.parametrize("model_type, config", [("gpt2", {"initializer_range": 0.05, "n_layer": 3}),
                                                ("opt", {"init_std": 0.05})])
def test_config_values_reach_the_formulas(model_type, config):
    entry = next(e for e in ENTRIES if e.build.endswith(f":{model_type}"))
    snap, reference = _build(entry, "eager", "none", **config)
    assert audit_snapshot(snap, entry.spec, reference).passed


def test_gpt2_c_proj_scaling_and_gemma_zero_centred_norm_are_checked():
    gpt2 = next(e for e in ENTRIES if e.name == "hf-gpt2")
    model = hf_models.gpt2()
    with torch.no_grad():
        for block in model.transformer.h:  # undo the residual scaling: N(0, initializer_range) everywhere
            torch.nn.init.normal_(block.mlp.c_proj.weight, std=model.config.initializer_range)
    report = audit_snapshot(models.build(model, "cpu"), gpt2.spec)
    assert {t.name for t in _params(report) if not t.passed} == {f"transformer.h.{i}.mlp.c_proj.weight"
                                                                  for i in range(2)}

    gemma = next(e for e in ENTRIES if e.name == "hf-gemma")
    model = hf_models.gemma()
    with torch.no_grad():
        model.model.norm.weight.fill_(1.0)  # a Llama-style RMSNorm init, wrong for Gemma's 1 + weight
    report = audit_snapshot(models.build(model, "cpu"), gemma.spec)
    assert {t.name for t in _params(report) if not t.passed} == {"model.norm.weight"}
