"""LitGPT zoo factories (litgpt-llama, litgpt-pythia, litgpt-gemma) against their specs: each builds and passes its
code spec in both modes, and fails its intent spec where LitGPT departs from the GPT-NeoX init it cites (the pythia
intent spec flags every GptNeoxMLP.proj where the code spec passes); the specs discriminate (init skipped, one proj at
the wrong std, the LLaMAMLP-family spec on a GptNeoxMLP model). Needs litgpt (skipped otherwise); about 40 s, most of it
importing litgpt.pretrain (lightning)."""

from __future__ import annotations

import math
import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("litgpt")

from conformance.audit import audit  # noqa: E402
from conformance.audit.zoo import availability, get  # noqa: E402
from conformance.audit.zoo.runner import run_entry  # noqa: E402

NAMES = ("litgpt-llama", "litgpt-pythia", "litgpt-gemma")
SMALL = dict(get("litgpt-llama").config)


@pytest.fixture(scope="module", autouse=True)
def _importable():
    avail = availability(get("litgpt-llama"), probe=True)
    if not avail.available:
        pytest.skip(avail.reason)
    pytest.importorskip("litgpt.pretrain")


def _roles(report) -> set[str]:
    """Failing parameters with layer indices as *."""
    return {re.sub(r"\.\d+\.", ".*.", t.name) for t in report.tensors if t.status != "pass"}


def _failing(report) -> list[str]:
    return [t.name for t in report.tensors if t.status != "pass"]


# -- builders with one thing wrong (eager; called with the entry's config) ------------------------------------------

def llama_init_skipped(**config):
    """GPT(config) as constructed, without pretrain's initialize_weights."""
    from litgpt import GPT, Config

    return GPT(Config.from_name("tiny-llama-1.1b", **config, padded_vocab_size=config["vocab_size"],
                                intermediate_size=256, n_query_groups=2))


def llama_proj_general_std(**config):
    """litgpt-llama with layer 1's mlp.proj re-initialized at the general std (as if it were not depth-scaled)."""
    import torch

    from conformance.audit.zoo.litgpt_models import llama

    model = llama(**config)
    torch.nn.init.normal_(model.transformer.h[1].mlp.proj.weight, std=math.sqrt(2 / 5 / model.config.n_embd))
    return model


def pythia_proj_depth_scaled(**config):
    """litgpt-pythia with layer 2's mlp.proj depth-scaled (as if GptNeoxMLP were in initialize_weights' list)."""
    import torch

    from conformance.audit.zoo.litgpt_models import pythia

    model = pythia(**config)
    c = model.config
    torch.nn.init.normal_(model.transformer.h[2].mlp.proj.weight, std=1 / math.sqrt(c.n_embd) / c.n_layer)
    return model


# -- tests ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_entry_builds_and_passes_its_code_spec(name):
    entry = get(name)
    run = run_entry(entry)
    assert run.status == "finding", run.reason  # code passes in every mode; the intent spec differs (below)
    code = run.code_reports()
    assert [r.device_init for r in code] == ["eager", "meta"]
    for report in code:
        assert report.passed, "\n".join(report.failures())
    for report in run.intent_reports():
        roles = _roles(report)
        assert {"transformer.h.*.attn.proj.weight", "transformer.h.*.mlp.proj.weight"} <= roles
        if name == "litgpt-gemma":  # unit-offset RMSNorm at ones: gain 2, where Gemma means weight 0 (gain 1)
            assert roles == {"transformer.h.*.attn.proj.weight", "transformer.h.*.mlp.proj.weight",
                             "transformer.h.*.norm_1.weight", "transformer.h.*.norm_2.weight",
                             "transformer.ln_f.weight"}
        else:
            assert len(roles) == 2
        if name == "litgpt-pythia":  # the contradiction settled: GptNeoxMLP.proj keeps sqrt(2/(5 n_embd)) in code
            mlp = [t for t in report.tensors if t.name.endswith("mlp.proj.weight")]  # wang_init wants 2/(L sqrt(d))
            assert len(mlp) == 4 and all(t.status == "mismatch" for t in mlp)
            assert all(t.observed["std"] > 1.2 * 2 / (4 * math.sqrt(128)) for t in mlp)  # +26% at 4 layers


def test_llama_family_spec_on_pythia_fails_exactly_the_mlp_proj():
    """litgpt_pretrain (LLaMAMLP family) is the wrong code spec for GptNeoxMLP: every mlp.proj is +153% std."""
    report = audit(get("litgpt-pythia").build, "litgpt_pretrain", config=SMALL, init="none")
    assert _failing(report) == [f"transformer.h.{i}.mlp.proj.weight" for i in range(4)]


def test_init_skipped_fails():
    report = audit(llama_init_skipped, "litgpt_pretrain", config=SMALL, init="none")
    assert not report.passed
    assert {"transformer.wte.weight", "lm_head.weight", "transformer.h.0.attn.proj.weight",
            "transformer.h.0.mlp.proj.weight"} <= set(_failing(report))


def test_one_llama_proj_at_the_general_std_fails():
    report = audit(llama_proj_general_std, "litgpt_pretrain", config=SMALL, init="none")
    assert _failing(report) == ["transformer.h.1.mlp.proj.weight"]


def test_one_pythia_mlp_proj_depth_scaled_fails_the_neox_spec():
    report = audit(pythia_proj_depth_scaled, "litgpt_pretrain_neox", config=SMALL, init="none")
    assert _failing(report) == ["transformer.h.2.mlp.proj.weight"]
