"""Train a torchvision segmentation architecture briefly on synthetic stills and export it
the way a user would (torch.onnx.export: input `input`, output `logits`, dynamic N/H/W,
opset 13). Used to measure `streamseg adapters train` self-training on a domain shift
(docs/BRING-YOUR-OWN-MODEL.md); it is not part of the product.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 training/train_torchvision_base.py \
      --stills training/data/train_fit28672_s0/clear/320x180 --seconds 900 --out /tmp/lraspp.onnx
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class LogitsOnly(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


def build(arch: str, classes: int) -> nn.Module:
    import torchvision.models.segmentation as seg

    fn = {"lraspp": seg.lraspp_mobilenet_v3_large, "deeplabv3": seg.deeplabv3_mobilenet_v3_large}[arch]
    kwargs = {"weights": None, "weights_backbone": None, "num_classes": classes}
    if arch == "deeplabv3":
        kwargs["aux_loss"] = False
    return LogitsOnly(fn(**kwargs))


def export(model: nn.Module, path: str, size=(128, 224)) -> None:
    model.eval()
    with torch.no_grad():
        torch.onnx.export(
            model, (torch.randn(1, 3, *size),), path, input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}},
            opset_version=13, do_constant_folding=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stills", nargs="+", required=True, help="directories of stills (images.npy/masks.npy or PNGs + meta.jsonl)")
    ap.add_argument("--arch", default="lraspp", choices=["lraspp", "deeplabv3"])
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    from streamseg_train.data import load_stills, to_tensor

    parts = [load_stills(d) for d in a.stills]
    images = np.concatenate([p.images for p in parts])
    masks = np.concatenate([p.masks for p in parts])
    model = build(a.arch, a.classes)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    rng = np.random.default_rng(a.seed)
    start = time.time()
    step = 0
    ema = None
    model.train()
    while time.time() - start < a.seconds:
        idx = rng.integers(0, len(images), a.batch)
        x = to_tensor(images[idx], MEAN, STD)
        y = torch.from_numpy(masks[idx].astype(np.int64))
        if rng.random() < 0.5:
            x, y = x.flip(3), y.flip(2)
        loss = F.cross_entropy(model(x), y, ignore_index=255)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 20 == 0:
            print(f"step {step} loss {ema:.3f} {time.time() - start:.0f}s", flush=True)
    model.eval()
    export(model, a.out, size=(images.shape[1], images.shape[2]))
    print(f"exported {a.out} after {step} steps ({time.time() - start:.0f}s), loss {ema:.3f}", flush=True)


if __name__ == "__main__":
    main()
