"""Exports a torchvision segmentation network with num_classes=8 and seeded random weights to
ONNX as a user would (input `input`, output `logits`, dynamic N/H/W, opset 13), for
`npm run bench:models` (bench/models.bench.ts).

  /usr/bin/python3 bench/export_torchvision.py lraspp|deeplabv3 OUT.onnx [--seed 0]

Random init alone leaves MobileNetV3's activations vanishing (about 1e-8 at the backbone's
output with torchvision's init), so the logits do not depend on the image and LoRA cannot
move them. Before export the BatchNorm statistics are recalibrated on a few batches of
random images (train-mode forward passes, cumulative averages): every layer then sees
unit-scale inputs, as in a trained network, and the masks vary from frame to frame. No weight
is trained; the timings are those of the architecture.
"""
from __future__ import annotations

import argparse
import warnings

import torch
from torchvision.models import segmentation as seg

ARCHS = {"lraspp": seg.lraspp_mobilenet_v3_large, "deeplabv3": seg.deeplabv3_mobilenet_v3_large}


class Logits(torch.nn.Module):
    """torchvision returns a dict; the export wants the logits tensor."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


def build(arch: str, seed: int, calibration_batches: int = 4) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = ARCHS[arch](weights=None, weights_backbone=None, num_classes=8)
    model = Logits(net)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(calibration_batches):
            model(torch.randn(4, 3, 128, 224))
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("arch", choices=sorted(ARCHS))
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = build(args.arch, args.seed)
    axes = {"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}}
    with torch.no_grad(), warnings.catch_warnings():
        # torch 1.13 says this for torchvision's segmentation heads; the import checks the export.
        warnings.filterwarnings("ignore", message="The shape inference of prim::Constant type is missing")
        torch.onnx.export(model, (torch.randn(1, 3, 128, 224),), args.out, input_names=["input"], output_names=["logits"], dynamic_axes=axes, opset_version=13)


if __name__ == "__main__":
    main()
