"""timm zoo factories (timm-vit, timm-resnet) against their specs: each builds and passes its code spec in every mode
it supports; the specs discriminate (init skipped, one layer at the wrong init, timm's fix_init and zero_init_last
switched). Needs timm and a torchvision that imports beside torch (skipped otherwise); about 30 s."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from conformance.audit import audit  # noqa: E402
from conformance.audit.zoo import availability, get  # noqa: E402
from conformance.audit.zoo.runner import run_entry  # noqa: E402

VIT = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, num_classes=10)
RESNET = dict(layers=(1, 1, 1, 1), channels=(32, 64, 128, 256), num_classes=10)


@pytest.fixture(scope="module", autouse=True)
def _importable():
    avail = availability(get("timm-vit"), probe=True)  # imports timm and torchvision
    if not avail.available:
        pytest.skip(avail.reason)


def _failing(report) -> list[str]:
    return [t.name for t in report.tensors if t.status != "pass"]


# -- builders with one thing wrong (eager) -------------------------------------------------------------------------

def vit_init_skipped():
    """weight_init='skip': timm's init_weights never runs; modules keep their constructors' init."""
    import timm

    return timm.create_model("vit_tiny_patch16_224", pretrained=False, weight_init="skip", **VIT)


def vit_fix_init():
    """fix_init=True: attn.proj and mlp.fc2 divided by sqrt(2 * (layer + 1)) after the init."""
    import timm

    return timm.create_model("vit_tiny_patch16_224", pretrained=False, fix_init=True, **VIT)


def vit_head_default():
    """The classifier head re-initialized by torch's Linear default (U(+-1/sqrt(fan_in)))."""
    from conformance.audit.zoo.timm_models import vit

    model = vit(**VIT)
    model.head.reset_parameters()
    return model


def resnet_no_zero_init_last():
    import timm

    return timm.create_model("resnet18", pretrained=False, zero_init_last=False, **RESNET)


def resnet_conv_fan_in():
    """layer2's first conv (32 -> 64 channels, 3x3) re-initialized with kaiming_normal_ in fan_in mode: std
    sqrt(2 / 288) where timm's fan_out mode gives sqrt(2 / 576)."""
    import torch

    from conformance.audit.zoo.timm_models import resnet

    model = resnet(**RESNET)
    torch.nn.init.kaiming_normal_(model.layer2[0].conv1.weight, mode="fan_in", nonlinearity="relu")
    return model


# -- tests ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "modes"), [("timm-vit", ["eager", "meta"]), ("timm-resnet", ["eager"])])
def test_entry_builds_and_passes_its_code_spec(name, modes):
    run = run_entry(get(name))
    assert run.status == "pass", run.reason + "\n".join(f for r in run.reports for f in r.failures())
    assert [r.device_init for r in run.code_reports()] == modes


def test_vit_meta_build_without_init_is_caught():
    report = audit(get("timm-vit").build, "timm_vit", device_init="meta", init="none", config=VIT)
    assert not report.passed
    assert all(t.status == "uninitialized" for t in report.tensors if t.kind == "parameter")


def test_vit_init_skipped_fails():
    bad = set(_failing(audit(vit_init_skipped, "timm_vit", init="none")))
    assert {"blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.weight", "head.weight"} <= bad
    assert not any(n.startswith("patch_embed.") or ".norm" in n for n in bad)  # those keep torch defaults anyway


def test_vit_fix_init_fails_exactly_the_rescaled_layers():
    bad = _failing(audit(vit_fix_init, "timm_vit", init="none"))
    assert sorted(bad) == sorted(f"blocks.{i}.{p}.weight" for i in range(2) for p in ("attn.proj", "mlp.fc2"))


def test_vit_head_at_torch_default_fails():
    bad = _failing(audit(vit_head_default, "timm_vit", init="none"))
    assert bad == ["head.weight", "head.bias"]


def test_resnet_without_zero_init_last_fails_every_block_bn2():
    bad = _failing(audit(resnet_no_zero_init_last, "timm_resnet", init="none"))
    assert bad == [f"layer{i}.0.bn2.weight" for i in range(1, 5)]


def test_resnet_conv_in_fan_in_mode_fails():
    bad = _failing(audit(resnet_conv_fan_in, "timm_resnet", init="none"))
    assert bad == ["layer2.0.conv1.weight"]
