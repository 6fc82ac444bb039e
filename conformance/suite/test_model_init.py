"""Model-level init: the built-in reference models follow their published init specs (conformance.audit).

Each case builds a small reference model (``conformance.backends.torch.models``) eagerly or through the meta device
(materialize + poison + ``init_weights``) and audits every parameter and buffer against a built-in spec:
distribution per parameter, std against depth, buffers equal to a fresh build, tied weights aliased, no identical
layers, every parameter matched by a rule. Runs on every backend declaring capability ``models``.
"""

from __future__ import annotations

import pytest

from conformance.audit import audit
from conformance.report.attachments import ModelInitAudit

pytestmark = [pytest.mark.requires("models")]

GPT2 = "conformance.backends.torch.models:gpt2"
LLAMA = "conformance.backends.torch.models:llama"

CASES = [
    ("gpt2", GPT2, {}, "eager", "auto"),
    ("gpt2", GPT2, {}, "meta", "auto"),
    ("torchtitan_llama3", LLAMA, {}, "eager", "auto"),
    ("torchtitan_llama3", LLAMA, {}, "meta", "auto"),
    ("torchtitan_llama3_no_depth_init", LLAMA, {"depth_init": False}, "meta", "auto"),
    ("olmo_mitchell", LLAMA, {"naming": "olmo"}, "meta", "auto"),
    ("olmo_normal", LLAMA, {"naming": "olmo", "scheme": "olmo_normal"}, "eager", "auto"),
    ("olmo_full_megatron", LLAMA, {"naming": "olmo", "scheme": "olmo_full_megatron"}, "meta", "auto"),
    ("litgpt_pretrain", LLAMA, {"naming": "litgpt"}, "meta", "auto"),
    ("torch_defaults", GPT2, {"tie_embeddings": False}, "eager", "none"),
]


def _id(case):
    spec, factory, config, mode, init = case
    extra = "-".join(f"{k}={v}" for k, v in config.items())
    return f"{spec}-{factory.rsplit(':', 1)[1]}-{mode}" + (f"-{extra}" if extra else "")


@pytest.mark.parametrize(("spec", "factory", "config", "device_init", "init"), CASES, ids=[_id(c) for c in CASES])
def test_reference_model_init(backend, conformance, spec, factory, config, device_init, init):
    """Every parameter, buffer, tie and depth profile of a reference model matches its spec."""
    report = audit(factory, spec, device_init=device_init, init=init, config=config, seed=conformance.seed,
                   adapter=backend, alpha=conformance.alpha)
    conformance.attach(audit_summary(report))
    conformance.expect(report.verdicts(), label=f"{spec} {device_init}")


def audit_summary(report) -> ModelInitAudit:
    """What the report's audit section shows: one row per tensor and the std-vs-depth fits."""
    d = report.to_dict()
    rows = [{k: t.get(k) for k in ("name", "kind", "status", "rule", "rule_where", "layer_id", "expected", "observed",
                                   "message")} for t in d["tensors"]]
    for row in rows:
        row["observed"] = {k: v for k, v in (row["observed"] or {}).items() if not isinstance(v, (list, dict))}
    depth = [{k: f.get(k) for k in ("rule", "layers", "observed_std", "expected_std", "stderr", "fit", "expected_fit")}
             for f in d["depth"]]
    return ModelInitAudit(spec=d["spec"], factory=d["factory"], device_init=d["device_init"], counts=d["counts"],
                          tensors=rows, depth=depth)
