"""Zoo factories of timm (PyTorch Image Models): a tiny VisionTransformer and a tiny ResNet, built by
``timm.create_model(..., pretrained=False)`` with the architecture shrunk by keyword arguments (nothing is
downloaded: ``pretrained=False`` only names the default config).

How timm initializes them (timm 1.0.31, specs ``timm_vit`` and ``timm_resnet``):

* ``VisionTransformer.__init__`` ends with ``self.init_weights(needs_reset=False)``: pos_embed trunc_normal(.02),
  cls_token normal(1e-6), then ``init_weights_vit_timm`` over every submodule (Linear: trunc_normal(.02), zero
  bias; modules that are not Linear keep what their constructor gave them). ``init_weights(needs_reset=True)``
  (its default) also calls ``reset_parameters`` of the other modules (patch-embedding Conv2d, LayerNorm): timm's
  own way to initialize a model built without storage, so the ViT factory supports the meta path with
  ``init = "init_weights"``.
* ``ResNet.__init__`` ends with ``self.init_weights(zero_init_last=True)``: kaiming_normal(fan_out, relu) on every
  Conv2d and zeros on each block's last BatchNorm weight; BatchNorm and the classifier Linear keep their
  constructor init, which ``init_weights`` does not redo, so a meta-built ResNet cannot be initialized the timm
  way: eager only.

Importing this module imports neither torch nor timm. timm needs torchvision (``imports``).
"""

from __future__ import annotations

from . import ZooFactory

UPSTREAM = "https://github.com/huggingface/pytorch-image-models"


def vit(img_size: int = 32, patch_size: int = 8, embed_dim: int = 64, depth: int = 2, num_heads: int = 2,
        num_classes: int = 10):
    """``vit_tiny_patch16_224`` (class token, learned pos_embed, pre-norm blocks, timm init mode '') shrunk."""
    import timm

    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=img_size, patch_size=patch_size,
                             embed_dim=embed_dim, depth=depth, num_heads=num_heads, num_classes=num_classes)


def resnet(layers: tuple = (1, 1, 1, 1), channels: tuple = (32, 64, 128, 256), num_classes: int = 10):
    """``resnet18`` (BasicBlock, plain 7x7 stem of 64 channels, zero_init_last) with one block per stage and
    narrower stages."""
    import timm

    return timm.create_model("resnet18", pretrained=False, layers=tuple(layers), channels=tuple(channels),
                             num_classes=num_classes)


ENTRIES = [
    ZooFactory(name="timm-vit", library="timm", build=f"{__name__}:vit", spec="timm_vit",
               summary="timm VisionTransformer (vit_tiny_patch16_224: 32px, patch 8, dim 64, depth 2), timm init",
               device_init=("eager", "meta"), init="init_weights", imports=("timm", "torchvision"),
               upstream=UPSTREAM),
    ZooFactory(name="timm-resnet", library="timm", build=f"{__name__}:resnet", spec="timm_resnet",
               summary="timm ResNet (resnet18 with BasicBlock layers [1,1,1,1], channels 32-256), timm init",
               device_init=("eager",), imports=("timm", "torchvision"), upstream=UPSTREAM),
]
